"""Errors of caller identities, roles and tool grants (all :class:`ToolError` s).

They belong to the tool permission layer: an identity exists to be checked by a
``ToolBus``. A call that is refused is always a :class:`ToolPermissionDenied`; the errors
here are raised earlier, to the code that wires the system (minting an identity,
registering a role, granting a tool), so a mistake there fails loudly instead of
silently granting nothing or everything.
"""

from __future__ import annotations

from ._taxonomy import ToolError


class UnknownRole(ToolError, LookupError):
    """A role was named that the identity authority never registered.

    Raised when granting a tool to a role name nobody registered, and when minting an
    identity (or spawning an actor) with a ``Role`` that is not this authority's own.
    """


class DuplicateRole(ToolError, ValueError):
    """A role of that name is already registered with the authority.

    Registering a role hands out its only ``Role`` object; a second registration would
    let any code obtain the same role by asking for it again, so it is refused.
    """


class InvalidGrant(ToolError, ValueError):
    """A grant that could never apply: to an open tool, to a plain name instead of an
    identity, to an identity that is revoked, forged or from another authority, or to
    an actor that has stopped."""
