"""Caller identities: the unforgeable answer to "who is calling this tool?".

A :class:`CallerIdentity` is a capability, not a name. Only an
:class:`IdentityAuthority` makes them (:meth:`IdentityAuthority.mint`), and it keeps the
set of identities it minted that are still live. A ``ToolBus`` accepts an identity only
if it is, *as an object*, in its authority's live set: a hand-built identity, a
structural copy, one from another authority, or one revoked because its actor stopped
for good is refused even though its name, roles and id are identical. Names stay
printable labels; they never grant anything.

Roles work the same way. :meth:`IdentityAuthority.register_role` hands out the only
:class:`Role` object of that name (registering a name twice is refused), and an identity
can carry a role only when the code that mints it presents that object. A role name
typed into an ``AgentSpec``, chosen by a model composing a team, or claimed by a caller
is a string, and a string is never a credential.

This module sits on floor 1 so the actor system (floor 4) can mint an identity for every
actor it spawns and the tool bus (floor 5) can check it. Python code running in the
process is trusted: whoever holds the authority can mint. What the design defends
against is untrusted *data* (model output, configuration, names) turning into
authority.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import attrs

from ..errors import DuplicateRole, UnknownRole
from ._ids import ActorId

_SEAL = object()
_NO_ROLES: frozenset[str] = frozenset()
"""Shared by every identity without roles (an empty frozenset built from an iterator
is a fresh 216-byte object; most actors have no roles)."""
"""Only this module holds it: the constructors check for it, so building an identity or
a role by hand fails at once with a message saying how to get one."""


def _check_seal(kind: str, seal: object) -> None:
    if seal is not _SEAL:
        raise TypeError(
            f"a {kind} cannot be constructed directly: register roles and mint identities "
            "with an IdentityAuthority (authority.register_role(name), authority.mint(name))"
        )


def _refuse_pickling(kind: str) -> NoReturn:
    raise TypeError(
        f"a {kind} cannot be pickled: it is valid only as the very object its authority "
        "made, inside this process"
    )


@attrs.frozen(eq=False, repr=False)
class Role:
    """A role's credential: holding this object lets the holder mint identities with it.

    Get one from :meth:`IdentityAuthority.register_role`. Grants on a tool bus may name
    the role by its :attr:`name` (a grant is given by the system's wiring code), but an
    identity carries the role only when its minter presents this very object.

    Attributes:
        name: The role's name.
        issuer: The authority that registered it (for error messages).
    """

    name: str
    issuer: str
    _seal: object = attrs.field(alias="seal", default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        _check_seal("Role", self._seal)

    def __copy__(self) -> Role:
        return self  # a credential is a reference: copying it yields the same object

    def __deepcopy__(self, memo: dict[int, Any]) -> Role:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse_pickling("Role")

    def __repr__(self) -> str:
        return f"<Role {self.name!r} of {self.issuer}>"

    def __str__(self) -> str:
        return self.name


@attrs.frozen(eq=False, repr=False)
class CallerIdentity:
    """Who calls a tool: minted by an :class:`IdentityAuthority`, checked by object.

    Actors (and so agents) get theirs from the actor system at spawn as
    ``ctx.identity``; it lives as long as the actor, across its restarts, and is revoked
    when the actor is gone for good. Equality is identity: two identities with the same
    name and roles are different callers.

    Attributes:
        name: A printable label (the actor's name); it grants nothing.
        roles: Names of the roles it was minted with.
        actor_id: The actor it belongs to, if any.
        issuer: The authority that minted it (for error messages).
    """

    name: str
    roles: frozenset[str]
    actor_id: ActorId | None
    issuer: str
    _seal: object = attrs.field(alias="seal", default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        _check_seal("CallerIdentity", self._seal)

    def __copy__(self) -> CallerIdentity:
        return self  # an identity is a reference: copying it yields the same object

    def __deepcopy__(self, memo: dict[int, Any]) -> CallerIdentity:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse_pickling("CallerIdentity")

    def __repr__(self) -> str:
        roles = ", ".join(sorted(self.roles))
        return f"<CallerIdentity {self.name!r} roles=[{roles}] of {self.issuer}>"

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class IdentityStatistics:
    """A snapshot of an :class:`IdentityAuthority`.

    Attributes:
        live: Identities minted and not revoked.
        minted: Identities minted in all.
        revoked: Identities revoked in all.
        roles: Names of the registered roles, sorted.
    """

    live: int
    minted: int
    revoked: int
    roles: tuple[str, ...]


Caller = CallerIdentity | str
"""Who presents a tool call: an identity, or a plain name, which is unauthenticated and
admitted by open tools only."""

RevocationListener = Callable[[CallerIdentity], object]
"""Told about every identity the moment it is revoked (e.g. a tool bus dropping its
grants, so grants to stopped actors do not accumulate)."""

_issuers = itertools.count(1)


class IdentityAuthority:
    """Registers roles, mints caller identities and revokes them.

    One authority is shared by an actor system and the tool buses that serve its
    actors (``RuntimeManager`` wires one; by hand: ``ToolBus(identities=
    system.identities)``). Identities minted by one authority are refused by a bus of
    another.

    The authority itself is a privileged object: it is for the code that wires the
    system, not for data-driven paths. It keeps a strong reference only to live
    identities; revoked ones are remembered weakly, to tell "revoked" from "forged" in
    error messages.

    Args:
        name: A label for error messages and :attr:`issuer`.
    """

    def __init__(self, name: str = "identities") -> None:
        self.name = name
        self.issuer = f"{name}#{next(_issuers)}"
        self._roles: dict[str, Role] = {}
        # Live identities and the roles they were minted with: the bus reads roles from
        # here, not from the object, so even tampering with a live identity gains none.
        self._live: dict[CallerIdentity, frozenset[str]] = {}
        self._by_actor: dict[ActorId, CallerIdentity] = {}
        self._revoked: weakref.WeakSet[CallerIdentity] = weakref.WeakSet()
        self._listeners: list[Callable[[], RevocationListener | None]] = []
        self._minted = 0
        self._revoked_count = 0

    # -- roles ----------------------------------------------------------------------------

    def register_role(self, name: str) -> Role:
        """Register role ``name`` and return its only :class:`Role` object.

        Hand the object to the code that spawns actors in that role; grants may name the
        role by string.

        Raises:
            DuplicateRole: ``name`` is already registered (its object went to whoever
                registered it first).
            ValueError: ``name`` is not a non-empty string.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a role name must be a non-empty string, got {name!r}")
        if name in self._roles:
            raise DuplicateRole(
                f"role {name!r} is already registered with {self.issuer}; use the Role "
                "object its first registration returned"
            )
        role = Role(name, self.issuer, seal=_SEAL)
        self._roles[name] = role
        return role

    def has_role(self, role: Role | str) -> bool:
        """Whether ``role`` (a name, or a :class:`Role` object) is registered here."""
        if isinstance(role, Role):
            return self._roles.get(role.name) is role
        return isinstance(role, str) and role in self._roles

    # -- identities -----------------------------------------------------------------------

    def mint(
        self, name: str, *, roles: Iterable[Role] = (), actor_id: ActorId | None = None
    ) -> CallerIdentity:
        """A new live identity called ``name`` carrying ``roles``.

        Args:
            name: Its printable label.
            roles: :class:`Role` objects this authority registered (names are refused).
            actor_id: The actor it belongs to (one live identity per actor).

        Raises:
            TypeError: a role is given as a string (or anything but a :class:`Role`).
            UnknownRole: a :class:`Role` was not registered by this authority.
            ValueError: ``name`` is empty, or ``actor_id`` already has a live identity.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"an identity's name must be a non-empty string, got {name!r}")
        names = frozenset(self._role_name(role) for role in roles) if roles else _NO_ROLES
        if actor_id is not None and actor_id in self._by_actor:
            raise ValueError(f"actor {actor_id} already has a live identity")
        identity = CallerIdentity(name, names, actor_id, self.issuer, seal=_SEAL)
        self._live[identity] = names
        if actor_id is not None:
            self._by_actor[actor_id] = identity
        self._minted += 1
        return identity

    def _role_name(self, role: object) -> str:
        if isinstance(role, str):
            raise TypeError(
                f"roles take Role objects from IdentityAuthority.register_role(), not names: "
                f"{role!r} is a name, and a name is not a credential"
            )
        if not isinstance(role, Role):
            raise TypeError(f"not a Role: {role!r}")
        if self._roles.get(role.name) is not role:
            raise UnknownRole(
                f"role {role.name!r} ({role.issuer}) was not registered with {self.issuer}"
            )
        return role.name

    def revoke(self, identity: CallerIdentity) -> None:
        """Revoke ``identity`` for good: every bus refuses it from now on. Idempotent.

        Raises:
            TypeError: ``identity`` is not a :class:`CallerIdentity`.
        """
        if not isinstance(identity, CallerIdentity):
            raise TypeError(f"not a CallerIdentity: {identity!r}")
        if self._live.pop(identity, None) is None:
            return
        if identity.actor_id is not None and self._by_actor.get(identity.actor_id) is identity:
            del self._by_actor[identity.actor_id]
        self._revoked.add(identity)
        self._revoked_count += 1
        alive: list[Callable[[], RevocationListener | None]] = []
        for reference in self._listeners:
            listener = reference()
            if listener is not None:
                alive.append(reference)
                listener(identity)
        self._listeners = alive

    def is_live(self, identity: object) -> bool:
        """Whether ``identity`` is an identity this authority minted and has not revoked
        (compared as an object: a copy or a look-alike is not live)."""
        return isinstance(identity, CallerIdentity) and identity in self._live

    def live_roles(self, identity: object) -> frozenset[str] | None:
        """The roles ``identity`` was minted with while it is live, else ``None``."""
        if not isinstance(identity, CallerIdentity):
            return None
        return self._live.get(identity)

    def refusal(self, identity: object) -> str | None:
        """Why ``identity`` is not acceptable here, or ``None`` when it is live."""
        if not isinstance(identity, CallerIdentity):
            return f"{identity!r} is not a CallerIdentity"
        if identity in self._live:
            return None
        if identity in self._revoked:
            return f"identity {identity.name!r} is revoked (its actor stopped for good)"
        if identity.issuer != self.issuer:
            return (
                f"identity {identity.name!r} was minted by {identity.issuer}, not by "
                f"{self.issuer} (share one IdentityAuthority between the actor system and "
                "the tool bus)"
            )
        return (
            f"identity {identity.name!r} was not minted by {self.issuer} "
            "(a forged or copied identity)"
        )

    def identity_of_actor(self, actor_id: ActorId) -> CallerIdentity | None:
        """The live identity of the actor ``actor_id`` (``None`` once it stopped)."""
        return self._by_actor.get(actor_id)

    # -- revocation listeners -------------------------------------------------------------

    def add_revocation_listener(self, listener: RevocationListener) -> None:
        """Call ``listener(identity)`` on every revocation.

        A bound method is held weakly (a tool bus that is dropped stops listening by
        itself); any other callable strongly until :meth:`remove_revocation_listener`.
        """
        reference: Callable[[], RevocationListener | None]
        if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
            reference = weakref.WeakMethod(listener)
        else:

            def reference() -> RevocationListener:
                return listener

        self._listeners.append(reference)

    def remove_revocation_listener(self, listener: RevocationListener) -> None:
        """Undo :meth:`add_revocation_listener` (unknown listeners are ignored)."""
        self._listeners = [ref for ref in self._listeners if ref() != listener]

    def statistics(self) -> IdentityStatistics:
        """Live, minted and revoked counts, and the registered role names."""
        return IdentityStatistics(
            live=len(self._live),
            minted=self._minted,
            revoked=self._revoked_count,
            roles=tuple(sorted(self._roles)),
        )

    def __repr__(self) -> str:
        return f"<IdentityAuthority {self.issuer} live={len(self._live)}>"
