"""Unforgeable identities: only the very objects an authority minted, while live, count.

Attack: under the old ``restricted`` policy a caller's identity was a plain argument
(its name), so anyone could call as anyone. Now a caller presents a ``CallerIdentity``;
hand-built ones, structural copies, pickled ones and those of another authority are
refused, and so are role credentials built the same ways.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import attrs
import pytest

from mister_smith import (
    CallerIdentity,
    EchoTool,
    EventBus,
    IdentityAuthority,
    Role,
    ToolBus,
    ToolCalled,
    ToolOutcome,
    ToolPermissionDenied,
    UnknownRole,
)


def forge(original: CallerIdentity | Role) -> CallerIdentity | Role:
    """A field-for-field clone made without the authority (what an attacker who can
    read an identity could build)."""
    clone = object.__new__(type(original))
    for field in attrs.fields(type(original)):
        object.__setattr__(clone, field.name, getattr(original, field.name))
    return clone


def guarded_bus() -> tuple[ToolBus, CallerIdentity, Role]:
    bus = ToolBus(events=EventBus())
    admin = bus.identities.register_role("admin")
    bus.register_tool(EchoTool(), roles=[admin])
    holder = bus.identities.mint("ops", roles=[admin])
    return bus, holder, admin


async def test_identities_cannot_be_built_by_hand() -> None:
    with pytest.raises(TypeError, match="cannot be constructed directly"):
        CallerIdentity("ops", frozenset({"admin"}), None, "identities#1")
    with pytest.raises(TypeError, match="cannot be constructed directly"):
        Role("admin", "identities#1")


async def test_a_forged_clone_of_a_live_identity_is_refused() -> None:
    bus, holder, _ = guarded_bus()
    clone = forge(holder)
    assert isinstance(clone, CallerIdentity)
    assert (clone.name, clone.roles, clone.issuer) == (holder.name, holder.roles, holder.issuer)
    with pytest.raises(ToolPermissionDenied, match="forged or copied"):
        await bus.call(clone, "echo", {"message": "x"})
    assert not bus.is_allowed(clone, "echo")
    assert bus.list_available_tools(clone) == []
    assert await bus.call(holder, "echo", {"message": "x"}) == {"message": "x"}
    assert bus.events is not None
    outcomes = [e.outcome for e in bus.events.history(ToolCalled)]
    assert outcomes == [ToolOutcome.DENIED, ToolOutcome.OK]


async def test_copies_are_the_same_object_and_pickling_is_refused() -> None:
    _, holder, admin = guarded_bus()
    assert copy.copy(holder) is holder
    assert copy.deepcopy({"who": holder})["who"] is holder
    assert copy.deepcopy(admin) is admin
    for credential in (holder, admin):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(credential)


async def test_an_identity_of_another_authority_is_refused() -> None:
    bus, _, _ = guarded_bus()
    elsewhere = IdentityAuthority("elsewhere")
    their_admin = elsewhere.register_role("admin")  # same name, different authority
    visitor = elsewhere.mint("ops", roles=[their_admin])
    with pytest.raises(ToolPermissionDenied, match="minted by elsewhere#"):
        await bus.call(visitor, "echo", {"message": "x"})


async def test_forged_or_foreign_roles_cannot_be_minted() -> None:
    bus, _, admin = guarded_bus()
    authority = bus.identities
    with pytest.raises(UnknownRole, match="was not registered"):
        authority.mint("mallory", roles=[forge(admin)])  # type: ignore[list-item]
    with pytest.raises(UnknownRole, match="was not registered"):
        authority.mint("mallory", roles=[IdentityAuthority().register_role("admin")])
    with pytest.raises(TypeError, match="a name is not a credential"):
        authority.mint("mallory", roles=["admin"])  # type: ignore[list-item]
    assert authority.statistics().live == 1  # only the legitimate holder


async def test_a_plain_name_is_never_an_identity() -> None:
    bus, holder, _ = guarded_bus()
    for caller in ("ops", str(holder), repr(holder), "admin"):
        with pytest.raises(ToolPermissionDenied, match="plain name, not a CallerIdentity"):
            await bus.call(caller, "echo", {"message": "x"})
    strays: list[Any] = [None, 42, holder.actor_id, ["ops"]]
    for stray in strays:
        with pytest.raises(ToolPermissionDenied, match="is not a CallerIdentity"):
            await bus.call(stray, "echo", {"message": "x"})
    assert bus.statistics().tools["echo"].denied == 8
