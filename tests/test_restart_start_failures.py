"""A nested supervisor restarted by its parent starts its children again; one failing
before it has started is handled like any failure of it, not as a failed restart."""

from __future__ import annotations

import pytest
import trio

from mister_smith.errors import SupervisionError
from mister_smith.supervision import ChildSpec, open_supervisor
from mister_smith.types import Restart


async def test_a_child_failing_its_start_in_a_restarted_supervisor_is_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts = {"flaky": 0}

    async def flaky(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        starts["flaky"] += 1
        if starts["flaky"] == 2:  # its first start in the restarted supervisor
            raise ValueError("not ready yet")
        task_status.started()
        await trio.sleep_forever()

    async def escalates() -> None:
        starts["escalates"] = starts.get("escalates", 0) + 1
        await trio.sleep(1)
        if starts["escalates"] == 1:
            raise SupervisionError("give up, team")
        await trio.sleep_forever()

    children = [
        ChildSpec.of(flaky, name="flaky", restart=Restart.PERMANENT),
        ChildSpec.of(escalates, name="escalates", restart=Restart.TEMPORARY),
    ]
    async with open_supervisor("root", max_restarts=5, keep_alive=True) as root:
        team = await root.start_supervisor("team", children=children, max_restarts=5)
        await trio.sleep(5)
        nested = root.child("team").value
        assert nested is not team  # restarted once by root
        assert nested.state == "running"
        assert nested.child("flaky").restarts == 1  # failed its start, was restarted
        assert starts["flaky"] == 3
        assert root.child("team").restarts == 1
        await root.stop()


async def test_a_child_failing_its_first_start_still_fails_the_start() -> None:
    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise ValueError("broken from the start")

    # Opening it (OTP: init) fails with the child's error, as a nursery reports it.
    with pytest.raises(ExceptionGroup) as raised:
        async with open_supervisor("root", children=[ChildSpec.of(broken, name="broken")]):
            pass  # pragma: no cover - the open fails
    assert raised.group_contains(ValueError, match="broken from the start")
