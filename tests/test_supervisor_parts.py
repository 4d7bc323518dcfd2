"""The parts the supervisor's shell is built from: the pure ``SupervisorConfig.reconfigured``
and ``spec_of_call``, the read side (``SupervisorView``), nesting, and failing a silent child."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from mister_smith.errors import HeartbeatTimeout
from mister_smith.events import EventBus, HeartbeatMissed
from mister_smith.supervision import (
    INHERIT,
    Backoff,
    ChildSpec,
    Restart,
    RestartLimit,
    Supervisor,
    SupervisorConfig,
    open_supervisor,
)
from mister_smith.supervision._child import spec_of_call
from mister_smith.supervision._heartbeat_watch import fail_silent


async def _idle() -> None:
    await trio.sleep_forever()


# -- SupervisorConfig.reconfigured ------------------------------------------------------


def test_reconfigured_keeps_every_option_left_out() -> None:
    config = SupervisorConfig(name="s", max_restarts=7, backoff=Backoff(1.0, 2.0))
    assert config.reconfigured() == config


def test_reconfigured_changes_only_the_given_options() -> None:
    config = SupervisorConfig(name="s", max_restarts=7, restart_window=10.0)
    new = config.reconfigured(
        max_restarts=2,
        restart_window=5.0,
        backoff=Backoff(1.0, 2.0),
        child_limit=RestartLimit(1, 3.0),
        escalation_timeout=4.0,
        shutdown_timeout=0.5,
    )
    assert new == attrs.evolve(
        config,
        max_restarts=2,
        restart_window=5.0,
        backoff=Backoff(1.0, 2.0),
        child_limit=RestartLimit(1, 3.0),
        escalation_timeout=4.0,
        shutdown_timeout=0.5,
    )
    assert config.max_restarts == 7  # the original is untouched


def test_reconfigured_none_turns_bounds_off_and_inherit_keeps_them() -> None:
    config = SupervisorConfig(
        max_restarts=3, backoff=Backoff(), child_limit=RestartLimit(1, 1.0), escalation_timeout=1.0
    )
    off = config.reconfigured(
        max_restarts=None, backoff=None, child_limit=None, escalation_timeout=None
    )
    assert (off.max_restarts, off.backoff, off.child_limit, off.escalation_timeout) == (
        None,
        None,
        None,
        None,
    )
    assert config.reconfigured(max_restarts=INHERIT, backoff=INHERIT) == config


def test_reconfigured_validates() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        SupervisorConfig().reconfigured(max_restarts=-1)
    with pytest.raises(ValueError, match="restart_window"):
        SupervisorConfig().reconfigured(restart_window=0.0)


async def test_a_failed_reconfigure_changes_nothing() -> None:
    async with open_supervisor("s", max_restarts=4, keep_alive=True) as sup:
        with pytest.raises(ValueError, match="shutdown_timeout"):
            sup.reconfigure(max_restarts=1, shutdown_timeout=-1.0)
        assert sup.max_restarts == 4
        sup.reconfigure(max_restarts=1)
        assert sup.config.max_restarts == sup.max_restarts == 1
        await sup.stop()


# -- spec_of_call ---------------------------------------------------------------------


def test_spec_of_call_builds_a_spec_from_fn_args_and_options() -> None:
    spec = spec_of_call(_idle, (), {"name": "a", "restart": None})
    assert (spec.fn, spec.args, spec.name) == (_idle, (), "a")


def test_spec_of_call_passes_a_spec_through() -> None:
    spec = ChildSpec.of(_idle, name="a")
    assert spec_of_call(spec, (), {"name": None, "restart": None}) is spec


@pytest.mark.parametrize(
    ("args", "options", "named"),
    [((1,), {"name": None}, "positional args"), ((), {"restart": 1, "name": "x"}, "name, restart")],
)
def test_spec_of_call_refuses_a_spec_with_args_or_options(
    args: tuple[object, ...], options: dict[str, object], named: str
) -> None:
    with pytest.raises(TypeError, match=f"not both \\(got {named}\\)"):
        spec_of_call(ChildSpec.of(_idle), args, options)


# -- the read side and nesting ----------------------------------------------------------


async def test_the_read_side_is_the_cores(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor("root", keep_alive=True, shutdown_timeout=2.0) as root:
        assert isinstance(root, Supervisor)
        assert (root.name, root.shutdown_timeout, root.child_count) == ("root", 2.0, 0)
        started: list[Supervisor] = []
        nested = await root.start_supervisor("inner", on_started=started.append)
        assert type(nested) is Supervisor
        assert started == [nested]
        assert root.child("inner").value is nested
        assert nested.events is root.events
        assert nested.shutdown_timeout == 2.0
        assert nested.config.keep_alive
        assert repr(nested) == "<Supervisor inner running children=0>"
        await nested.start_child(_idle, name="leaf")
        # The nested supervisor's grace is its children's, not an infinite timeout of its own.
        assert root.shutdown_bound() == pytest.approx(nested.shutdown_bound() + 0.01)
        assert root.statistics().children == 1
        await root.stop()


# -- failing a silent child -------------------------------------------------------------


async def test_fail_silent_injects_a_heartbeat_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    async with open_supervisor("s", events=bus, keep_alive=True, max_restarts=0) as sup:
        child = await sup.start_child(_idle, name="quiet", restart=Restart.TEMPORARY)
        run = child._run
        assert run is not None
        fail_silent(child, 1.5, "s", bus)
        assert isinstance(run.injected, HeartbeatTimeout)
        assert "silent for 1.5 s" in str(run.injected)
        await run.wait_finished()
        fail_silent(child, 2.0, "s", bus)  # a finished run: nothing happens
        missed = bus.history(HeartbeatMissed)
        assert [(event.child, event.silent_for) for event in missed] == [("quiet", 1.5)]
        await sup.stop()
