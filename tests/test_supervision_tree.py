"""SupervisionTree: domain supervisors on demand, overflow siblings, snapshots, restarts."""

from __future__ import annotations

import attrs
import pytest
import trio

from mister_smith.errors import RecoveryAction, SupervisionError
from mister_smith.events import EventBus, SupervisionDecision
from mister_smith.supervision import (
    Restart,
    SupervisionTree,
    TreeSnapshot,
    open_supervision_tree,
    open_supervisor,
    shutdown_grace,
    snapshot,
)


@attrs.define
class Journal:
    entries: list[tuple[str, str, float]] = attrs.field(factory=list)

    def note(self, what: str, name: str) -> None:
        self.entries.append((what, name, trio.current_time()))

    def times(self, what: str, name: str) -> list[float]:
        return [t for w, n, t in self.entries if w == what and n == name]


async def worker(journal: Journal, name: str, crash_at: float | None = None) -> None:
    """Runs until stopped; crashes once if it is running at ``crash_at``."""
    journal.note("start", name)
    try:
        if crash_at is not None and trio.current_time() < crash_at:
            await trio.sleep_until(crash_at)
            raise ValueError(f"{name} crashed")
        await trio.sleep_forever()
    finally:
        journal.note("end", name)


async def quick(journal: Journal, name: str) -> None:
    journal.note("start", name)
    await trio.sleep(1)
    journal.note("end", name)


def sup_names(tree: SupervisionTree) -> dict[str, list[str]]:
    return {domain: [s.name for s in sups] for domain, sups in tree.domains().items()}


async def test_route_to_domain_creates_supervisors_on_demand(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    async with open_supervision_tree("root") as tree:
        assert tree.domains() == {}
        a = await tree.route_to_domain("research", worker, journal, "a", name="a")
        b = await tree.route_to_domain("code", worker, journal, "b", name="b")
        c = await tree.route_to_domain("research", worker, journal, "c", name="c")
        assert sup_names(tree) == {"research": ["research"], "code": ["code"]}
        assert a.supervisor is c.supervisor
        assert a.supervisor.name == "research"
        assert b.supervisor.name == "code"
        assert [c.name for c in tree.root.children()] == ["research", "code"]
        assert tree.events is tree.root.events
        await trio.sleep(1)
    # Leaving the block stops the tree: domains in reverse order, their children too.
    assert [n for w, n, _ in journal.entries if w == "end"] == ["b", "c", "a"]
    assert trio.current_time() == 1.0


async def test_full_domain_supervisor_gets_a_sibling(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    async with open_supervision_tree(max_children_per_supervisor=2) as tree:
        children = [
            await tree.route_to_domain("d", worker, journal, f"w{i}", name=f"w{i}")
            for i in range(5)
        ]
        assert sup_names(tree) == {"d": ["d", "d#2", "d#3"]}
        assert [c.supervisor.name for c in children] == ["d", "d", "d#2", "d#2", "d#3"]
        assert all(len(s.children()) <= 2 for s in tree.domains()["d"])
        # A freed slot in the first supervisor is used before any new sibling.
        await children[1].stop()
        again = await tree.route_to_domain("d", worker, journal, "w5", name="w5")
        assert again.supervisor.name == "d"
        sixth = await tree.route_to_domain("d", worker, journal, "w6", name="w6")
        assert sixth.supervisor.name == "d#3"
        seventh = await tree.route_to_domain("d", worker, journal, "w7", name="w7")
        assert seventh.supervisor.name == "d#4"


async def test_snapshot_renders_the_tree(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    async with open_supervision_tree(max_children_per_supervisor=2) as tree:
        for i in range(5):
            await tree.route_to_domain(
                "research" if i < 3 else "code",
                worker,
                journal,
                f"w{i}",
                3.0 if i == 1 else None,
                name=f"w{i}",
                restart=Restart.PERMANENT,
            )
        await trio.sleep(4)
        snap = tree.snapshot()
    assert snap.render() == "\n".join(
        [
            "◆ root [running]",
            "├─ ◆ research [running]",
            "│  ├─ ● w0 [running]",
            "│  └─ ● w1 [running] restarts=1",
            "├─ ◆ research#2 [running]",
            "│  └─ ● w2 [running]",
            "└─ ◆ code [running]",
            "   ├─ ● w3 [running]",
            "   └─ ● w4 [running]",
        ]
    )
    assert str(snap) == snap.render()
    assert [(n.name, n.kind) for n in snap.walk()] == [
        ("root", "supervisor"),
        ("research", "supervisor"),
        ("w0", "child"),
        ("w1", "child"),
        ("research#2", "supervisor"),
        ("w2", "child"),
        ("code", "supervisor"),
        ("w3", "child"),
        ("w4", "child"),
    ]
    assert {n.name: n.restarts for n in snap.walk()}["w1"] == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.name = "other"  # type: ignore[misc]
    # The snapshot is a copy: it does not change when the tree does.
    assert snap.walk()[1].state == "running"


def test_tree_snapshot_render_of_a_lone_node() -> None:
    assert TreeSnapshot("solo", "child", "stopped", restarts=2).render() == (
        "● solo [stopped] restarts=2"
    )


async def test_snapshot_of_a_plain_supervisor_with_nesting(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_supervisor("top", keep_alive=True) as top:
        nested = await top.start_supervisor("inner")
        await nested.start_child(trio.sleep_forever, name="leaf")
        await top.start_child(trio.sleep_forever, name="plain")
        snap = snapshot(top)
        await top.stop()
    assert snap.render() == "\n".join(
        [
            "◆ top [running]",
            "├─ ◆ inner [running]",
            "│  └─ ● leaf [running]",
            "└─ ● plain [running]",
        ]
    )


async def test_domain_restart_recreates_routed_children(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    async with open_supervision_tree(events=bus, domain_max_restarts=0) as tree:
        await tree.route_to_domain("d", worker, journal, "calm", name="calm")
        await tree.route_to_domain(
            "d", worker, journal, "flaky", 2.0, name="flaky", restart=Restart.PERMANENT
        )
        first = tree.domains()["d"][0]
        await trio.sleep(5)
        second = tree.domains()["d"][0]
        assert second is not first
        assert first.state == "failed"
        assert [c.name for c in second.children()] == ["calm", "flaky"]
        snap = tree.snapshot()
    # flaky's crash at 2 exceeded the domain's intensity (0): the root restarted the
    # domain supervisor, which started both routed children again.
    assert journal.times("start", "calm") == [0.0, 2.0]
    assert journal.times("start", "flaky") == [0.0, 2.0]
    assert [(d.supervisor, d.child) for d in bus.history(SupervisionDecision)] == [
        ("d", "flaky"),
        ("root", "d"),
    ]
    domain_node = snap.children[0]
    assert (domain_node.name, domain_node.restarts) == ("d", 1)


async def test_stopped_or_finished_children_are_not_recreated(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    async with open_supervision_tree(domain_max_restarts=0) as tree:
        stopped = await tree.route_to_domain("d", worker, journal, "stopped", name="stopped")
        await tree.route_to_domain(
            "d", quick, journal, "done", name="done", restart=Restart.TRANSIENT
        )
        await tree.route_to_domain(
            "d", worker, journal, "flaky", 3.0, name="flaky", restart=Restart.PERMANENT
        )
        await stopped.stop()
        await trio.sleep(5)
        assert [c.name for c in tree.domains()["d"][0].children()] == ["flaky"]
    assert journal.times("start", "stopped") == [0.0]
    assert journal.times("start", "done") == [0.0]
    assert journal.times("start", "flaky") == [0.0, 3.0]


async def test_auto_named_routed_children_keep_their_name_across_restarts(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    async with open_supervision_tree(domain_max_restarts=0) as tree:
        child = await tree.route_to_domain("d", worker, journal, "x", 1.0)
        await trio.sleep(2)
        names = [c.name for c in tree.domains()["d"][0].children()]
    assert names == [child.name]
    assert journal.times("start", "x") == [0.0, 1.0]


async def test_domain_names_are_validated(autojump_clock: trio.abc.Clock) -> None:
    async with open_supervision_tree() as tree:
        for bad in ("", "a#b", "a/b"):
            with pytest.raises(ValueError):
                await tree.route_to_domain(bad, trio.sleep_forever)
        assert tree.domains() == {}


async def test_max_children_per_supervisor_must_be_positive(
    autojump_clock: trio.abc.Clock,
) -> None:
    with pytest.RaisesGroup(ValueError, allow_unwrapped=True):
        async with open_supervision_tree(max_children_per_supervisor=0):
            pass  # pragma: no cover


async def test_routing_while_a_domain_restarts_does_not_fail(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()

    async def slow_to_stop(name: str) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with shutdown_grace():
                await trio.sleep(2)
            journal.note("end", name)

    async with open_supervision_tree(domain_max_restarts=0) as tree:
        await tree.route_to_domain("d", slow_to_stop, "slow", name="slow")
        await tree.route_to_domain(
            "d", worker, journal, "flaky", 1.0, name="flaky", restart=Restart.PERMANENT
        )
        await trio.sleep(1.5)  # the domain gave up at 1 and is stopping "slow" until 3
        try:
            late = await tree.route_to_domain("d", worker, journal, "late", name="late")
        except SupervisionError:
            late = None
        await trio.sleep(5)
        assert late is not None
        running = [c.name for s in tree.domains()["d"] for c in s.children()]
        assert "late" in running


async def test_routing_gives_up_when_a_domain_stays_down_too_long(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()

    async def very_slow_to_stop() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with shutdown_grace():
                await trio.sleep(30)
            journal.note("end", "slow")

    async with open_supervision_tree(domain_max_restarts=0) as tree:
        await tree.route_to_domain("d", very_slow_to_stop, name="slow", shutdown_timeout=60)
        await tree.route_to_domain(
            "d", worker, journal, "flaky", 1.0, name="flaky", restart=Restart.PERMANENT
        )
        await trio.sleep(1.5)  # the domain gave up at 1 and needs until 31 to stop
        with pytest.raises(SupervisionError, match="did not come back"):
            await tree.route_to_domain("d", worker, journal, "late", name="late")
        assert trio.current_time() == 1.5 + tree.restart_wait
    assert journal.times("start", "late") == []


@pytest.mark.parametrize("per_supervisor", [100, 1])
async def test_concurrent_routing_to_a_new_domain(
    autojump_clock: trio.abc.Clock, per_supervisor: int
) -> None:
    journal = Journal()
    errors: list[BaseException] = []

    async def route(index: int) -> None:
        try:
            await tree.route_to_domain("d", worker, journal, f"w{index}", name=f"w{index}")
        except Exception as exc:
            errors.append(exc)

    async with open_supervision_tree(max_children_per_supervisor=per_supervisor) as tree:
        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(route, index)
        routed = sorted(c.name for s in tree.domains()["d"] for c in s.children())
        supervisors = sorted(sup_names(tree)["d"])
    assert errors == []
    assert routed == ["w0", "w1", "w2"]
    assert supervisors == (["d"] if per_supervisor == 100 else ["d", "d#2", "d#3"])


async def test_a_crash_looping_domain_is_restarted_then_stopped_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts: dict[str, int] = {"bad": 0, "good": 0}

    async def worker(kind: str) -> None:
        starts[kind] += 1
        await trio.sleep(1)
        if kind == "bad":
            raise ValueError("always fails")
        await trio.sleep_forever()

    bus = EventBus()
    async with open_supervision_tree(
        events=bus, max_restarts=2, restart_window=100, domain_max_restarts=0
    ) as tree:
        await tree.route_to_domain("flaky", worker, "bad", name="bad")
        await tree.route_to_domain("steady", worker, "good", name="good")
        await trio.sleep(50)
        # flaky gave up at each failure (intensity 0); the root restarted it twice
        # (its budget), then stopped it for good. steady and the root never noticed.
        assert starts == {"bad": 3, "good": 1}
        decisions = [(e.child, e.action) for e in bus.history(SupervisionDecision)]
        assert [a for c, a in decisions if c == "flaky"] == [
            RecoveryAction.RESTART,
            RecoveryAction.RESTART,
            RecoveryAction.STOP,
        ]
        assert tree.root.state == "running"
        assert [c.name for c in tree.root.children()] == ["steady"]
