"""The error taxonomy: severities, recovery strategies, builtin bases, classification."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mypy import api as mypy_api

import mister_smith
from mister_smith import errors
from mister_smith.errors import (
    ActorError,
    ActorStopped,
    AskTimeout,
    ConfigError,
    DispatchQueueFull,
    ErrorClassification,
    ErrorSeverity,
    EscalatedError,
    EventError,
    EventTimeout,
    InvalidToolInput,
    MailboxFull,
    MisterSmithError,
    NetworkError,
    PersistenceError,
    PoolExhausted,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    RestartIntensityExceeded,
    RuntimeFault,
    StreamError,
    SupervisionError,
    TaskError,
    TaskQueueFull,
    TaskTimeout,
    ToolError,
    ToolExecutionFailed,
    ToolNotFound,
    ToolPermissionDenied,
    ToolTimeout,
    classify_error,
)

LIGHT_RETRY = RecoveryStrategy.Retry(max_attempts=1, delay=0.1)

# The design doc's six kinds and the wider design's kinds, with their exact defaults.
KIND_DEFAULTS: list[tuple[type[MisterSmithError], ErrorSeverity, RecoveryStrategy]] = [
    (RuntimeFault, ErrorSeverity.CRITICAL, RecoveryStrategy.Restart()),
    (SupervisionError, ErrorSeverity.HIGH, RecoveryStrategy.Escalate()),
    (ConfigError, ErrorSeverity.MEDIUM, RecoveryStrategy.Reload()),
    (ResourceError, ErrorSeverity.MEDIUM, RecoveryStrategy.Retry(max_attempts=3, delay=1.0)),
    (NetworkError, ErrorSeverity.LOW, RecoveryStrategy.CircuitBreaker()),
    (PersistenceError, ErrorSeverity.HIGH, RecoveryStrategy.Failover()),
    (ActorError, ErrorSeverity.MEDIUM, LIGHT_RETRY),
    (TaskError, ErrorSeverity.LOW, LIGHT_RETRY),
    (StreamError, ErrorSeverity.MEDIUM, LIGHT_RETRY),
    (EventError, ErrorSeverity.LOW, LIGHT_RETRY),
    (ToolError, ErrorSeverity.LOW, LIGHT_RETRY),
]

# Specific errors inherit their kind's defaults unchanged.
SPECIFIC_ERRORS: list[tuple[type[MisterSmithError], type[MisterSmithError]]] = [
    (PoolExhausted, ResourceError),
    (MailboxFull, ActorError),
    (DispatchQueueFull, ActorError),
    (ActorStopped, ActorError),
    (AskTimeout, ActorError),
    (EventTimeout, EventError),
    (TaskTimeout, TaskError),
    (TaskQueueFull, TaskError),
    (ToolNotFound, ToolError),
    (ToolPermissionDenied, ToolError),
    (InvalidToolInput, ToolError),
    (ToolTimeout, ToolError),
    (ToolExecutionFailed, ToolError),
]

ALL_ERROR_CLASSES: list[type[MisterSmithError]] = sorted(
    {
        obj
        for name in errors.__all__
        if isinstance(obj := getattr(errors, name), type) and issubclass(obj, MisterSmithError)
    },
    key=lambda cls: cls.__name__,
)

ALL_STRATEGIES: list[RecoveryStrategy] = [
    RecoveryStrategy.Retry(max_attempts=2, delay=0.5),
    RecoveryStrategy.Restart(),
    RecoveryStrategy.Escalate(),
    RecoveryStrategy.Reload(),
    RecoveryStrategy.CircuitBreaker(),
    RecoveryStrategy.Failover(),
    RecoveryStrategy.Ignore(),
]


def test_every_exported_error_belongs_to_exactly_one_kind() -> None:
    kinds = [kind for kind, _, _ in KIND_DEFAULTS]
    for cls in ALL_ERROR_CLASSES:
        if cls is MisterSmithError:
            continue
        owners = [kind for kind in kinds if issubclass(cls, kind)]
        assert len(owners) == 1, (cls, owners)


def test_errors_are_reexported_flat_from_the_package() -> None:
    for name in errors.__all__:
        assert getattr(mister_smith, name) is getattr(errors, name)


# --- severities and default strategies ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "severity", "recovery"), KIND_DEFAULTS, ids=[k.__name__ for k, _, _ in KIND_DEFAULTS]
)
def test_kind_default_severity_and_recovery(
    kind: type[MisterSmithError], severity: ErrorSeverity, recovery: RecoveryStrategy
) -> None:
    error = kind("boom")
    assert error.severity is severity
    assert error.recovery_strategy == recovery
    assert type(error.recovery_strategy) is type(recovery)
    assert kind.default_severity is severity
    assert kind.default_recovery == recovery
    assert issubclass(kind, MisterSmithError)


@pytest.mark.parametrize(("specific", "kind"), SPECIFIC_ERRORS, ids=lambda v: v.__name__)
def test_specific_errors_inherit_their_kind_defaults(
    specific: type[MisterSmithError], kind: type[MisterSmithError]
) -> None:
    assert issubclass(specific, kind)
    error = specific()
    assert error.severity is kind.default_severity
    assert error.recovery_strategy == kind.default_recovery


@pytest.mark.parametrize("given_up", [RestartIntensityExceeded, EscalatedError])
def test_a_supervisor_that_gave_up_is_restarted_by_its_parent_by_default(
    given_up: type[SupervisionError],
) -> None:
    # Failures climb one level at a time (OTP): a nested supervisor that gave up is one
    # failing child of its parent, restarted under the parent's intensity, not an
    # escalation that runs straight to the root. Severity stays the kind's.
    error = given_up()
    assert isinstance(error, SupervisionError)
    assert error.severity is SupervisionError.default_severity
    assert error.recovery_strategy == RecoveryStrategy.Restart()
    assert classify_error(error).recovery_strategy == RecoveryStrategy.Restart()
    assert SupervisionError().recovery_strategy == RecoveryStrategy.Escalate()


def test_resource_retry_is_three_attempts_one_second_apart() -> None:
    strategy = ResourceError().recovery_strategy
    assert isinstance(strategy, RecoveryStrategy.Retry)
    assert strategy.max_attempts == 3
    assert strategy.delay == 1.0


def test_light_retry_is_one_attempt_after_100_ms() -> None:
    strategy = ToolError().recovery_strategy
    assert isinstance(strategy, RecoveryStrategy.Retry)
    assert (strategy.max_attempts, strategy.delay) == (1, 0.1)


def test_root_error_defaults_to_high_escalate() -> None:
    error = MisterSmithError("x")
    assert error.severity is ErrorSeverity.HIGH
    assert error.recovery_strategy == RecoveryStrategy.Escalate()


def test_error_message_and_args_are_kept() -> None:
    error = ConfigError("bad key", "a.b")
    assert error.args == ("bad key", "a.b")
    assert str(ConfigError("bad key")) == "bad key"


# --- severity ordering ----------------------------------------------------------------


def test_severity_order() -> None:
    assert ErrorSeverity.LOW < ErrorSeverity.MEDIUM < ErrorSeverity.HIGH < ErrorSeverity.CRITICAL
    assert sorted(ErrorSeverity, reverse=True) == [
        ErrorSeverity.CRITICAL,
        ErrorSeverity.HIGH,
        ErrorSeverity.MEDIUM,
        ErrorSeverity.LOW,
    ]
    assert max(ErrorSeverity) is ErrorSeverity.CRITICAL
    assert min(ErrorSeverity) is ErrorSeverity.LOW


# --- overrides -----------------------------------------------------------------------


def test_instance_overrides_severity_and_recovery() -> None:
    error = NetworkError(
        "down",
        severity=ErrorSeverity.CRITICAL,
        recovery_strategy=RecoveryStrategy.Failover(),
    )
    assert error.severity is ErrorSeverity.CRITICAL
    assert error.recovery_strategy == RecoveryStrategy.Failover()
    assert error.args == ("down",)
    # The override is per instance: the class and other instances are untouched.
    assert NetworkError.default_severity is ErrorSeverity.LOW
    assert NetworkError("other").recovery_strategy == RecoveryStrategy.CircuitBreaker()


def test_instance_may_override_only_one_of_the_two() -> None:
    only_severity = RuntimeFault(severity=ErrorSeverity.LOW)
    assert only_severity.severity is ErrorSeverity.LOW
    assert only_severity.recovery_strategy == RecoveryStrategy.Restart()

    only_recovery = RuntimeFault(recovery_strategy=RecoveryStrategy.Ignore())
    assert only_recovery.severity is ErrorSeverity.CRITICAL
    assert only_recovery.recovery_strategy == RecoveryStrategy.Ignore()


def test_subclass_overrides_defaults() -> None:
    class FlakyDisk(PersistenceError):
        default_severity = ErrorSeverity.LOW
        # The ignore works around the typing bug pinned by
        # test_overriding_a_kinds_default_recovery_type_checks below.
        default_recovery = RecoveryStrategy.Retry(max_attempts=5, delay=0.0)

    class StillFlaky(FlakyDisk):
        pass

    for cls in (FlakyDisk, StillFlaky):
        error = cls()
        assert error.severity is ErrorSeverity.LOW
        assert error.recovery_strategy == RecoveryStrategy.Retry(max_attempts=5, delay=0.0)
    # The parent kind keeps its own defaults.
    assert PersistenceError().severity is ErrorSeverity.HIGH
    assert PersistenceError().recovery_strategy == RecoveryStrategy.Failover()
    # And an instance of the subclass can still override.
    assert FlakyDisk(severity=ErrorSeverity.HIGH).severity is ErrorSeverity.HIGH


def test_overriding_a_kinds_default_recovery_type_checks(tmp_path: Path) -> None:
    snippet = tmp_path / "override.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from mister_smith.errors import PersistenceError, RecoveryStrategy, RuntimeFault

            class FlakyDisk(PersistenceError):
                default_recovery = RecoveryStrategy.Retry(max_attempts=5, delay=0.0)

            class Harmless(RuntimeFault):
                default_recovery = RecoveryStrategy.Ignore()
            """
        )
    )
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            "--config-file",
            "",
            str(snippet),
        ]
    )
    assert status == 0, stdout + stderr


# --- builtin bases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConfigError, ValueError),
        (AskTimeout, TimeoutError),
        (ToolTimeout, TimeoutError),
        (TaskTimeout, TimeoutError),
        (EventTimeout, TimeoutError),
        (ToolPermissionDenied, PermissionError),
        (ToolNotFound, LookupError),
        (InvalidToolInput, ValueError),
        (NetworkError, ConnectionError),
    ],
    ids=lambda v: v.__name__,
)
def test_builtin_bases(cls: type[MisterSmithError], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("x")
    error = cls("x")
    assert isinstance(error, MisterSmithError)
    assert error.severity is cls.default_severity


def test_taxonomy_never_shadows_builtin_names() -> None:
    assert not hasattr(errors, "SystemError")
    assert not hasattr(errors, "RuntimeError")
    assert not issubclass(RuntimeFault, RuntimeError)


# --- classify_error ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ValueError("user bug"), RuntimeFault),
        (KeyError("missing"), RuntimeFault),
        (ZeroDivisionError(), RuntimeFault),
        (TimeoutError(), RuntimeFault),
        (ConnectionError("reset"), NetworkError),
        (ConnectionRefusedError(), NetworkError),
        (BrokenPipeError(), NetworkError),
        (MemoryError(), ResourceError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_classify_builtin_errors(error: BaseException, kind: type[MisterSmithError]) -> None:
    assert classify_error(error) == ErrorClassification(
        kind, kind.default_severity, kind.default_recovery
    )


def test_classify_plain_value_error_is_a_critical_restart() -> None:
    result = classify_error(ValueError("bad input"))
    assert result.kind is RuntimeFault
    assert result.severity is ErrorSeverity.CRITICAL
    assert result.recovery_strategy == RecoveryStrategy.Restart()


def test_classify_our_errors_speaks_for_itself() -> None:
    result = classify_error(PoolExhausted("no slot"))
    assert result == ErrorClassification(
        PoolExhausted, ErrorSeverity.MEDIUM, RecoveryStrategy.Retry(max_attempts=3, delay=1.0)
    )
    # Our NetworkError is a ConnectionError too, but keeps its own class as the kind.
    assert classify_error(NetworkError()).kind is NetworkError
    # A ConfigError is a ValueError, but is not demoted to a runtime fault.
    assert classify_error(ConfigError()).kind is ConfigError


def test_classify_honours_instance_overrides() -> None:
    error = ConfigError(
        "bad", severity=ErrorSeverity.CRITICAL, recovery_strategy=RecoveryStrategy.Escalate()
    )
    result = classify_error(error)
    assert result.kind is ConfigError
    assert result.severity is ErrorSeverity.CRITICAL
    assert result.recovery_strategy == RecoveryStrategy.Escalate()


def test_classification_is_frozen() -> None:
    result = classify_error(ValueError())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.severity = ErrorSeverity.LOW  # type: ignore[misc]


# --- RecoveryStrategy ----------------------------------------------------------------


def test_strategy_actions() -> None:
    assert [s.action for s in ALL_STRATEGIES] == [
        RecoveryAction.RETRY,
        RecoveryAction.RESTART,
        RecoveryAction.ESCALATE,
        RecoveryAction.RELOAD,
        RecoveryAction.CIRCUIT_BREAKER,
        RecoveryAction.FAILOVER,
        RecoveryAction.IGNORE,
    ]
    assert RecoveryStrategy.Retry.action is RecoveryAction.RETRY
    # Every action but STOP is a strategy one can ask for; STOP is only recorded by a
    # supervisor when a child has spent its own restart budget.
    assert {s.action for s in ALL_STRATEGIES} == set(RecoveryAction) - {RecoveryAction.STOP}


def test_strategies_are_strategies() -> None:
    for strategy in ALL_STRATEGIES:
        assert isinstance(strategy, RecoveryStrategy)


def test_strategy_equality() -> None:
    assert RecoveryStrategy.Restart() == RecoveryStrategy.Restart()
    assert RecoveryStrategy.Retry(3, 1.0) == RecoveryStrategy.Retry(max_attempts=3, delay=1.0)
    assert RecoveryStrategy.Retry() == RecoveryStrategy.Retry(3, 1.0)
    assert RecoveryStrategy.Retry(3, 1.0) != RecoveryStrategy.Retry(3, 2.0)
    assert RecoveryStrategy.Retry(3, 1.0) != RecoveryStrategy.Retry(4, 1.0)
    # Field-less variants differ from one another.
    for i, left in enumerate(ALL_STRATEGIES):
        for j, right in enumerate(ALL_STRATEGIES):
            assert (left == right) is (i == j)
    assert len(set(ALL_STRATEGIES)) == len(ALL_STRATEGIES)


STRATEGY_REPRS: list[tuple[RecoveryStrategy, str]] = [
    (RecoveryStrategy.Retry(3, 1.0), "RecoveryStrategy.Retry(max_attempts=3, delay=1.0)"),
    (RecoveryStrategy.Restart(), "RecoveryStrategy.Restart()"),
    (RecoveryStrategy.Escalate(), "RecoveryStrategy.Escalate()"),
    (RecoveryStrategy.Reload(), "RecoveryStrategy.Reload()"),
    (RecoveryStrategy.CircuitBreaker(), "RecoveryStrategy.CircuitBreaker()"),
    (RecoveryStrategy.Failover(), "RecoveryStrategy.Failover()"),
    (RecoveryStrategy.Ignore(), "RecoveryStrategy.Ignore()"),
]


@pytest.mark.parametrize(
    ("strategy", "text"), STRATEGY_REPRS, ids=[text for _, text in STRATEGY_REPRS]
)
def test_strategy_repr(strategy: RecoveryStrategy, text: str) -> None:
    assert repr(strategy) == text


def test_strategies_are_frozen() -> None:
    retry = RecoveryStrategy.Retry(3, 1.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        retry.max_attempts = 5  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        retry.delay = 0.0  # type: ignore[misc]
    assert retry == RecoveryStrategy.Retry(3, 1.0)


@pytest.mark.parametrize("max_attempts", [0, -1, True, False, 1.0, 2.5, "3", None])
def test_retry_rejects_bad_max_attempts(max_attempts: object) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RecoveryStrategy.Retry(max_attempts=max_attempts, delay=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [-0.001, -1, math.nan, True, False, "1", None])
def test_retry_rejects_bad_delay(delay: object) -> None:
    with pytest.raises(ValueError, match="delay"):
        RecoveryStrategy.Retry(max_attempts=1, delay=delay)  # type: ignore[arg-type]


@pytest.mark.parametrize(("max_attempts", "delay"), [(1, 0), (1, 0.0), (10, 2), (1, math.inf)])
def test_retry_accepts_edge_values(max_attempts: int, delay: float) -> None:
    retry = RecoveryStrategy.Retry(max_attempts=max_attempts, delay=delay)
    assert (retry.max_attempts, retry.delay) == (max_attempts, delay)


@given(
    max_attempts=st.integers(min_value=1, max_value=10**6),
    delay=st.floats(min_value=0, allow_nan=False) | st.integers(min_value=0, max_value=10**6),
)
def test_retry_accepts_any_valid_arguments(max_attempts: int, delay: float) -> None:
    retry = RecoveryStrategy.Retry(max_attempts=max_attempts, delay=delay)
    assert retry == RecoveryStrategy.Retry(max_attempts, delay)
    assert repr(retry) == f"RecoveryStrategy.Retry(max_attempts={max_attempts!r}, delay={delay!r})"


# --- property over every error class -------------------------------------------------

strategies_st = st.one_of(
    st.builds(
        RecoveryStrategy.Retry,
        max_attempts=st.integers(min_value=1, max_value=100),
        delay=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    ),
    st.sampled_from(ALL_STRATEGIES),
)


@given(
    cls=st.sampled_from(ALL_ERROR_CLASSES),
    message=st.text(max_size=20),
    severity=st.none() | st.sampled_from(ErrorSeverity),
    recovery=st.none() | strategies_st,
)
def test_every_error_class_knows_its_severity_and_recovery(
    cls: type[MisterSmithError],
    message: str,
    severity: ErrorSeverity | None,
    recovery: RecoveryStrategy | None,
) -> None:
    error = cls(message, severity=severity, recovery_strategy=recovery)
    expected_severity = cls.default_severity if severity is None else severity
    expected_recovery = cls.default_recovery if recovery is None else recovery
    assert isinstance(error, MisterSmithError)
    assert isinstance(error.severity, ErrorSeverity)
    assert isinstance(error.recovery_strategy, RecoveryStrategy)
    assert error.severity is expected_severity
    assert error.recovery_strategy == expected_recovery
    assert error.args == (message,)
    assert classify_error(error) == ErrorClassification(cls, expected_severity, expected_recovery)
    with pytest.raises(cls):
        raise error
