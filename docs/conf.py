"""Sphinx configuration of the mister_smith documentation.

Built by ``nox -s docs`` with warnings as errors and nitpicky references
(``-W --keep-going -n``), then its examples are run (``sphinx.ext.doctest``). No
network is needed: the intersphinx inventories are kept in ``_inventories/``.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import re
from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.nodes import make_refnode

HERE = Path(__file__).resolve().parent

project = "mister_smith"
author = "mister_smith developers"
copyright = "mister_smith developers"
release = importlib.metadata.version("mister-smith")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    # "sphinx.ext.viewcode",
    "sphinxcontrib_trio",
]

exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path = ["_static"]

html_theme = "furo"
html_title = f"mister_smith {release}"
pygments_style = "friendly"
pygments_dark_style = "monokai"

# -- autodoc and napoleon (our docstrings are Google style) ------------------------------
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
autodoc_inherit_docstrings = True
python_use_unqualified_type_names = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True
napoleon_use_ivar = True  # attributes are documented once, by autodoc (undoc-members)

# -- intersphinx: local inventories, online targets ----------------------------------------
_INVENTORIES = HERE / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_INVENTORIES / "python.inv")),
    "trio": ("https://trio.readthedocs.io/en/stable", str(_INVENTORIES / "trio.inv")),
    "attrs": ("https://www.attrs.org/en/stable", str(_INVENTORIES / "attrs.inv")),
    "cattrs": ("https://catt.rs/en/stable", str(_INVENTORIES / "cattrs.inv")),
}
intersphinx_timeout = 1

# -- nitpicky references ----------------------------------------------------------------
nitpicky = True
# Third-party libraries whose inventories we do not ship (their names appear in type
# hints of public signatures), and typing machinery that has no documentation target.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(prometheus_client|h11|httpx|outcome|psutil|mcp|anyio|hypothesis|yaml|"
        r"opentelemetry|nats|trio_util|stamina|pytest|_pytest|mcp_types|sqlite3\.Connection)(\..*)?",
    ),
    (
        r"py:.*",
        r"(CollectorRegistry|Metric|AsyncClient|Response|Request|SearchStrategy|"
        r"DrawFn|FixtureRequest|MonkeyPatch)",
    ),
    (r"py:.*", r"(T|E|R|P|K|V|T_co|T_contra|E_co|M|ArgsT|RetT|P\.args|P\.kwargs|Self)"),
    (r"py:.*", r"(typing_extensions|typing|collections\.abc|types)\..*"),
    (r"py:class", r"(trio\.(abc\.)?[A-Za-z_.]+)"),  # trio names its inventory lacks
    (r"py:class", r"(attr|attrs)\..*"),
    (r"py:class", r"(cattrs|cattr)\..*"),
    (r"py:class", r"(NoneType|ellipsis|builtins\..*|Ellipsis|_io\..*|os\.PathLike.*)"),
    # Type variables, and implementation classes of private modules that public
    # signatures mention (protocols, sentinels, cells): not public names to link to.
    (r"py:(class|obj)", r"mister_smith\.(\w+\.)*(T|E|R|M|P|Ts|T_co|E_co)"),
    (r"py:(class|obj)", r"(T|E|R|M|P|Ts)"),
    (r"py:(class|obj|data)", r"mister_smith\.(\w+\.)*_\w+\.\w+"),
]

# Names some docstrings point at that have no entry of their own (an attribute set in
# ``__init__`` and described in prose, a private constant, a private class named in a
# hint). Each is a docstring to improve in the code; listed here so the build stays strict
# for everything else.
nitpick_ignore = (
    [
        ("py:attr", name)
        for name in (
            "identities",
            "retry_at",
            "supervisor",
            "child",
            "severity",
            "recovery_strategy",
            "key",
            "expected",
            "actual",
            "Grant.connection",
            "grant",
            "received",
            "truncated",
            "FailureType.CRASH",
            "issuer",
            "tool_bus",
            "metrics",
            "http_port",
        )
    ]
    + [
        ("py:data", name)
        for name in (
            "CANCEL_GRACE",
            "DRAIN_GRACE",
            "DEFAULT_CODEC",
            "mister_smith.persistence.DEFAULT_CODEC",
            "PREVIEW_CHARS",
            "MAX_WALK",
            "MAX_READ_LIMIT",
            "PONG",
            "MAX_OFFENDERS",
            "mister_smith.events.DEFAULT_PAYLOAD_LIMIT",
            "SchemaMode",
            "SUPPORTED_KEYWORDS",
            "INHERIT",
            "mister_smith.runtime.FIXED_AT_OPEN",
            "config_converter",
        )
    ]
    + [
        ("py:class", name)
        for name in ("ActorCell", "_Run", "RecoveryPolicy", "Resolver", "Nothing", "Connected")
    ]
    + [("py:mod", "mister_smith.agents._parsing")]
)

# A hint naming ``Restart`` or ``CircuitBreaker`` matches both the class and the
# ``RecoveryStrategy`` member of that name; Sphinx links the first and says so.
suppress_warnings = ["ref.python"]

# -- doctest: the examples are run by ``nox -s docs`` ------------------------------------
doctest_global_setup = """
import trio
import trio.testing
"""
doctest_test_doctest_blocks = ""  # only explicit testcode / doctest directives run


# -- private module paths in type hints resolve to their public names ---------------------
_PRIVATE = re.compile(r"^(mister_smith(?:\.[a-z][a-z_]*)*?)(?:\._[a-z_0-9]+)+\.([A-Za-z_][\w.]*)$")


def _public_target(target: str) -> list[str]:
    """``mister_smith.events._bus.EventBus`` → candidates ``mister_smith.events.EventBus``,
    then the package's parents (``mister_smith.EventBus``)."""
    match = _PRIVATE.match(target)
    if match is None:
        return []
    package, name = match.groups()
    candidates = []
    parts = package.split(".")
    while parts:
        candidates.append(".".join([*parts, name]))
        parts.pop()
    return candidates


def _resolve_private(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.Element | None:
    """Resolve ``mister_smith.x._private.Name`` (how type hints name our classes) and
    unqualified names in our hints to the documented public object, by a direct look-up
    in the Python domain's objects (no fuzzy search: that is slow on 1,000 objects)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    objects = env.domains["py"].objects  # type: ignore[attr-defined]
    candidates = _public_target(target)
    if not candidates and target.count(".") == 1 and target.startswith("mister_smith."):
        # ``mister_smith.ToolTimeout``: the flat re-export of a sub-package's name.
        name = target.split(".", 1)[1]
        candidates = [f"mister_smith.{package}.{name}" for package in _PACKAGES]
    if (
        not candidates
        and not target.startswith("mister_smith")
        and node.get("py:module", "").startswith("mister_smith")
    ):
        # An unqualified name in a hint or docstring (``TreeSnapshot``,
        # ``SystemTestHarness.assert_invariants``): try the packages.
        candidates = [f"mister_smith.{package}.{target}" for package in _PACKAGES]
    for candidate in candidates:
        entry = objects.get(candidate)
        if entry is not None:
            return make_refnode(
                app.builder,
                node.get("refdoc", ""),
                entry.docname,
                entry.node_id,
                contnode,
                candidate,
            )
    return None


_PACKAGES = (
    "errors",
    "types",
    "config",
    "events",
    "persistence",
    "supervision",
    "actors",
    "async_patterns",
    "tools",
    "tools.mcp",
    "transport",
    "resources",
    "monitoring",
    "agents",
    "runtime",
    "testing",
)


_TYPE_TOKEN = re.compile(r"^[\w.\[\],|`~*]+$")


def _prose_before_colon(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Napoleon reads ``text: more`` at the top of a property's docstring as ``type:
    description``; ours are prose (``Queued plus in-flight messages: the live load``).
    When the words before the colon cannot be a type (two plain words in a row), the
    colon becomes a dash so napoleon leaves the sentence alone."""
    if what not in ("property", "attribute") or not lines:
        return
    head, colon, tail = lines[0].partition(": ")
    if not colon:
        return
    tokens = head.split()
    words = [bool(_TYPE_TOKEN.match(token)) and token not in ("|", "or") for token in tokens]
    if any(a and b for a, b in itertools.pairwise(words)) or not all(
        _TYPE_TOKEN.match(token) for token in tokens
    ):
        lines[0] = f"{head} — {tail}"


def setup(app: Sphinx) -> None:
    """Resolve hints that name private modules to the public re-exports; keep property
    docstrings' prose from being read as types."""
    app.connect("missing-reference", _resolve_private)
    app.connect("autodoc-process-docstring", _prose_before_colon, priority=100)
