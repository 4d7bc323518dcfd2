"""Properties of the permission gate, against a plain model of who may call what.

Whatever sequence of mints, revocations, forgeries, grants, revocations of grants and
policy changes happens, ``ToolBus.is_allowed`` agrees with the model for every caller
(live, revoked and forged identities, plain names) alone and acting for another; and a
run of calls is counted exactly: every denial is one ``denied`` and one ``DENIED``
event.
"""

from __future__ import annotations

from typing import Any

import attrs
import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mister_smith import (
    Caller,
    CallerIdentity,
    EchoTool,
    EventBus,
    InvalidGrant,
    Role,
    ToolBus,
    ToolCalled,
    ToolOutcome,
    ToolPermissionDenied,
)

TOOLS = ("t0", "t1", "t2")
ROLES = ("r0", "r1", "r2")
NAMES = ("alice", "bob", "r0", "t0")


def make_tools(bus: ToolBus) -> None:
    for name in TOOLS:
        bus.register_tool(EchoTool(name=name))


def forge(identity: CallerIdentity) -> CallerIdentity:
    clone = object.__new__(CallerIdentity)
    for field in attrs.fields(CallerIdentity):
        object.__setattr__(clone, field.name, getattr(identity, field.name))
    return clone


class PermissionMachine(RuleBasedStateMachine):
    """Drives a deny-by-default bus and a model of its grants side by side."""

    @initialize()
    def start(self) -> None:
        self.bus = ToolBus()
        make_tools(self.bus)
        self.roles: dict[str, Role] = {n: self.bus.identities.register_role(n) for n in ROLES}
        self.identities: list[tuple[CallerIdentity, frozenset[str]]] = []
        self.live: set[CallerIdentity] = set()
        self.forged: list[CallerIdentity] = []
        self.callers: dict[str, set[CallerIdentity]] = {t: set() for t in TOOLS}
        self.granted_roles: dict[str, set[str]] = {t: set() for t in TOOLS}
        self.open: set[str] = set()

    # -- what the model says -----------------------------------------------------------

    def allowed(self, caller: object, tool: str) -> bool:
        if tool in self.open:
            return True
        if not isinstance(caller, CallerIdentity) or caller not in self.live:
            return False
        roles = next(r for i, r in self.identities if i is caller)
        return caller in self.callers[tool] or bool(roles & self.granted_roles[tool])

    def everyone(self) -> list[Caller]:
        return [*(i for i, _ in self.identities), *self.forged, *NAMES]

    # -- rules ---------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), roles=st.sets(st.sampled_from(ROLES)))
    def mint(self, name: str, roles: set[str]) -> None:
        identity = self.bus.identities.mint(name, roles=[self.roles[r] for r in roles])
        self.identities.append((identity, frozenset(roles)))
        self.live.add(identity)

    @rule(data=st.data())
    def revoke_identity(self, data: st.DataObject) -> None:
        if self.identities:
            identity, _ = data.draw(st.sampled_from(self.identities))
            self.bus.identities.revoke(identity)
            self.live.discard(identity)
            for granted in self.callers.values():
                granted.discard(identity)

    @rule(data=st.data())
    def forge_one(self, data: st.DataObject) -> None:
        if self.identities:
            self.forged.append(forge(data.draw(st.sampled_from(self.identities))[0]))

    @rule(data=st.data(), tool=st.sampled_from(TOOLS))
    def grant_caller(self, data: st.DataObject, tool: str) -> None:
        candidates = [i for i, _ in self.identities] + self.forged
        if not candidates:
            return
        who = data.draw(st.sampled_from(candidates))
        if tool in self.open or who not in self.live:
            try:
                self.bus.grant(tool, callers=[who])
            except InvalidGrant:
                return
            raise AssertionError(f"granting {tool} to {who!r} should have been refused")
        self.bus.grant(tool, callers=[who])
        self.callers[tool].add(who)

    @rule(tool=st.sampled_from(TOOLS), role=st.sampled_from(ROLES))
    def grant_role(self, tool: str, role: str) -> None:
        if tool in self.open:
            try:
                self.bus.grant(tool, roles=[role])
            except InvalidGrant:
                return
            raise AssertionError("a role grant on an open tool should have been refused")
        self.bus.grant(tool, roles=[role])
        self.granted_roles[tool].add(role)

    @rule(data=st.data(), tool=st.sampled_from(TOOLS))
    def withdraw(self, data: st.DataObject, tool: str) -> None:
        role = data.draw(st.sampled_from(ROLES))
        self.bus.revoke(tool, roles=[role])
        self.granted_roles[tool].discard(role)
        if self.identities:
            who = data.draw(st.sampled_from(self.identities))[0]
            self.bus.revoke(tool, callers=[who])
            self.callers[tool].discard(who)

    @rule(tool=st.sampled_from(TOOLS), policy=st.sampled_from(["open", "deny", "restricted"]))
    def set_policy(self, tool: str, policy: Any) -> None:
        has_grants = bool(self.callers[tool] or self.granted_roles[tool])
        if policy == "open" and has_grants:
            try:
                self.bus.set_policy(tool, policy)
            except InvalidGrant:
                return
            raise AssertionError("opening a tool with grants should have been refused")
        self.bus.set_policy(tool, policy)
        if policy == "open":
            self.open.add(tool)
        else:
            self.open.discard(tool)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def gate_agrees_with_the_model(self) -> None:
        people = self.everyone()
        for tool in TOOLS:
            for caller in people:
                assert self.bus.is_allowed(caller, tool) == self.allowed(caller, tool), (
                    caller,
                    tool,
                )
            for caller in people[:4]:
                for principal in people[:4]:
                    expected = self.allowed(caller, tool) and self.allowed(principal, tool)
                    got = self.bus.is_allowed(caller, tool, on_behalf_of=[principal])
                    assert got == expected, (caller, principal, tool)

    @invariant()
    def only_live_identities_are_held(self) -> None:
        stats = self.bus.identities.statistics()
        assert stats.live == len(self.live)


TestPermissionMachine = PermissionMachine.TestCase
TestPermissionMachine.settings = settings(stateful_step_count=20)


@given(
    grants=st.lists(st.tuples(st.sampled_from(TOOLS), st.sampled_from(ROLES)), max_size=6),
    calls=st.lists(st.tuples(st.integers(0, 5), st.sampled_from((*TOOLS, "nope"))), max_size=30),
)
def test_every_call_is_counted_once_under_its_outcome(
    grants: list[tuple[str, str]], calls: list[tuple[int, str]]
) -> None:
    async def main() -> None:
        bus = ToolBus(events=EventBus())
        make_tools(bus)
        roles = {name: bus.identities.register_role(name) for name in ROLES}
        for tool, role in grants:
            bus.grant(tool, roles=[role])
        holders = [bus.identities.mint(f"holder-{r}", roles=[roles[r]]) for r in ROLES]
        callers: list[Caller] = [*holders, bus.identities.mint("nobody"), "r0", forge(holders[0])]
        expected = {"ok": 0, "denied": 0, "missing": 0}
        for who, tool in calls:
            caller = callers[who]
            try:
                await bus.call(caller, tool, {"message": "x"})
            except ToolPermissionDenied:
                expected["denied"] += 1
                assert not bus.is_allowed(caller, tool)
            except LookupError:
                expected["missing"] += 1
            else:
                expected["ok"] += 1
                assert bus.is_allowed(caller, tool)
        stats = bus.statistics()
        assert stats.calls == len(calls)
        assert stats.not_found == expected["missing"]
        assert sum(t.denied for t in stats.tools.values()) == expected["denied"]
        assert sum(t.succeeded for t in stats.tools.values()) == expected["ok"]
        assert bus.events is not None
        outcomes = [e.outcome for e in bus.events.history(ToolCalled)]
        assert outcomes.count(ToolOutcome.DENIED) == expected["denied"]
        assert outcomes.count(ToolOutcome.OK) == expected["ok"]
        assert len(outcomes) == len(calls)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
