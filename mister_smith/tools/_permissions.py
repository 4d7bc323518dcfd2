"""Tool policies and grants: who may call a tool, decided by identity, never by name.

A tool is ``"deny"`` (only the identities and roles granted it) or ``"open"`` (every
caller, including an unauthenticated plain name). ``"restricted"`` is accepted as an
alias of ``"deny"`` for code and configuration written before deny became the default.

The check is done against the bus's :class:`~mister_smith.types.IdentityAuthority`: an
identity counts only while it is, as an object, one of the authority's live identities,
so look-alikes, copies, identities of another authority and revoked identities (their
actor stopped for good) are refused with a reason saying which.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from ..actors import ActorRef
from ..errors import InvalidGrant, UnknownRole
from ..types import CallerIdentity, IdentityAuthority, Role

ToolPolicy = Literal["deny", "open"]
"""``"deny"``: only the callers and roles granted the tool (the default). ``"open"``:
every caller, including an unauthenticated plain name."""

PolicyName = Literal["deny", "open", "restricted"]
"""What policy arguments accept: a :data:`ToolPolicy`, or ``"restricted"`` (an alias of
``"deny"`` kept for code and configuration written before deny was the default)."""

Grantee = CallerIdentity | ActorRef
"""Who a tool can be granted to: an identity, or a live actor (its identity)."""


def check_policy(policy: object) -> ToolPolicy:
    """``policy`` as a :data:`ToolPolicy` (``"restricted"`` becomes ``"deny"``).

    Raises:
        ValueError: anything else.
    """
    if policy == "restricted":
        return "deny"
    if policy == "deny" or policy == "open":
        return policy
    raise ValueError(
        f"tool policy must be 'deny' (or its alias 'restricted') or 'open', got {policy!r}"
    )


def caller_label(caller: object, on_behalf_of: tuple[object, ...] = ()) -> str:
    """How events and errors name a caller (and whom it acts for)."""
    label = str(caller)
    if on_behalf_of:
        label += " (for " + " > ".join(str(c) for c in on_behalf_of) + ")"
    return label


def _not_a_sequence(values: object, what: str, tool: str) -> None:
    if isinstance(values, str | bytes | CallerIdentity | Role | ActorRef):
        raise InvalidGrant(f"tool {tool!r}: {what} must be a list, got the single {values!r}")


@attrs.define(eq=False)
class ToolGrants:
    """Who may call one tool: its policy, the identities and the role names granted.

    Attributes:
        policy: ``"deny"`` or ``"open"``.
        callers: Identities granted the tool (dropped when revoked).
        roles: Role names granted the tool.
    """

    policy: ToolPolicy
    callers: set[CallerIdentity] = attrs.field(factory=set)
    roles: set[str] = attrs.field(factory=set)

    @property
    def empty(self) -> bool:
        """Nothing is granted."""
        return not self.callers and not self.roles

    def refusal(self, caller: object, authority: IdentityAuthority) -> str | None:
        """Why ``caller`` may not call the tool, or ``None`` when it may."""
        if self.policy == "open":
            return None
        if isinstance(caller, str):
            return (
                f"{caller!r} is a plain name, not a CallerIdentity: only open tools admit "
                "unauthenticated callers"
            )
        held = authority.live_roles(caller)
        if held is None:
            return authority.refusal(caller)
        assert isinstance(caller, CallerIdentity)
        if caller in self.callers or not self.roles.isdisjoint(held):
            return None
        roles = ", ".join(sorted(held)) or "none"
        return f"identity {caller.name!r} (roles: {roles}) is not granted it"


def resolve_grantees(
    authority: IdentityAuthority, callers: Iterable[object], tool: str
) -> set[CallerIdentity]:
    """The live identities ``callers`` stand for (an ``ActorRef`` stands for its actor's).

    Raises:
        InvalidGrant: a plain name, an identity that is revoked, forged or from another
            authority, an actor that has stopped, or anything else.
    """
    _not_a_sequence(callers, "callers", tool)
    resolved: set[CallerIdentity] = set()
    for caller in callers:
        if isinstance(caller, ActorRef):
            identity = authority.identity_of_actor(caller.actor_id)
            if identity is None:
                raise InvalidGrant(
                    f"tool {tool!r}: actor {caller.name!r} has no live identity here (it "
                    "stopped, or its actor system uses another IdentityAuthority): the "
                    "grant could never apply"
                )
            resolved.add(identity)
        elif isinstance(caller, CallerIdentity):
            reason = authority.refusal(caller)
            if reason is not None:
                raise InvalidGrant(f"tool {tool!r}: {reason}: the grant could never apply")
            resolved.add(caller)
        elif isinstance(caller, str):
            raise InvalidGrant(
                f"tool {tool!r}: callers are granted by identity (a CallerIdentity or an "
                f"ActorRef), not by name: {caller!r} is a name, and a name is not a credential"
            )
        else:
            raise InvalidGrant(
                f"tool {tool!r}: a caller grant needs a CallerIdentity or an ActorRef, "
                f"got {caller!r}"
            )
    return resolved


def resolve_roles(authority: IdentityAuthority, roles: Iterable[object], tool: str) -> set[str]:
    """The names of ``roles`` (names or :class:`Role` objects), each registered.

    Raises:
        UnknownRole: a role the authority never registered (the grant could never
            apply: no identity can carry it).
        InvalidGrant: anything but a name or a :class:`Role`.
    """
    _not_a_sequence(roles, "roles", tool)
    names: set[str] = set()
    for role in roles:
        if not isinstance(role, Role | str):
            raise InvalidGrant(f"tool {tool!r}: a role grant needs a name or a Role, got {role!r}")
        if not authority.has_role(role):
            raise UnknownRole(
                f"tool {tool!r}: role {str(role)!r} is not registered with "
                f"{authority.issuer}, so no identity can carry it; register it first "
                "(authority.register_role)"
            )
        names.add(str(role))
    return names
