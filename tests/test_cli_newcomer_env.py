"""Environment-variable typos as a newcomer makes them: each reported, with a suggestion."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.cli import main
from mister_smith.config import ConfigValidationError, load_config


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigValidationError) as raised:
        load_config(env=env)
    return raised.value.problems


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("MISTER_SMITH__MONITORING__HTTP_PROT", "MISTER_SMITH__MONITORING__HTTP_PORT"),
        ("MISTER_SMITH__MONITORNG__HTTP_PORT", "MISTER_SMITH__MONITORING__HTTP_PORT"),
        (
            "MISTER_SMITH__SUPERVISION__MAX_RESTART_ATEMPTS",
            "MISTER_SMITH__SUPERVISION__MAX_RESTART_ATTEMPTS",
        ),
    ],
)
def test_a_misspelt_setting_gets_a_did_you_mean(variable: str, suggestion: str) -> None:
    (problem,) = problems({variable: "5"})
    assert problem.startswith(f"{variable} (")
    assert f"(did you mean {suggestion}?)" in problem


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("MISTER_SMITH_MONITORING_HTTP_PORT", "MISTER_SMITH__MONITORING__HTTP_PORT"),
        ("MISTER_SMITH_MONITORING__HTTP_PORT", "MISTER_SMITH__MONITORING__HTTP_PORT"),
        ("mister_smith_tools_default_timeout", "MISTER_SMITH__TOOLS__DEFAULT_TIMEOUT"),
        (
            "MISTER_SMITH_ORCHESTRATION_AUTOSCALING_MAX_REPLICAS",
            "MISTER_SMITH__ORCHESTRATION__AUTOSCALING__MAX_REPLICAS",
        ),
    ],
)
def test_the_single_underscore_form_is_reported_not_ignored(variable: str, suggestion: str) -> None:
    (problem,) = problems({variable: "5"})
    assert problem.startswith(f"{variable}: not read: ")
    assert f"did you mean {suggestion}?" in problem
    # ... and the suggestion is right: it applies.
    assert load_config(env={suggestion: "7"}) is not None


def test_a_single_underscore_section_with_an_unknown_setting_names_the_form() -> None:
    (problem,) = problems({"MISTER_SMITH_SUPERVISION_NOPE": "1"})
    assert "settings are spelt MISTER_SMITH__SUPERVISION__<SETTING>" in problem


@given(
    st.sampled_from(
        ["MISTER_SMITH_HYPOTHESIS_PROFILE", "MISTER_SMITH_OPENAI_MODEL", "MISTER_SMITHY", "PATH"]
    ),
    st.text(max_size=20),
)
def test_other_variables_are_left_alone(name: str, value: str) -> None:
    # Variables that do not start with a section are not settings: not reported.
    load_config(env={name: value})


def test_the_command_reports_them_as_config_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MISTER_SMITH_MONITORING_HTTP_PORT", "9999")
    assert main(["config"], out=io.StringIO()) == 2
    error = capsys.readouterr().err
    assert error.startswith("mister-smith: config error: MISTER_SMITH_MONITORING_HTTP_PORT")
    assert "did you mean MISTER_SMITH__MONITORING__HTTP_PORT?" in error
