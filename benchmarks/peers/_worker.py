"""The child side of a worker process: load one adapter, then run workloads on request.

Kept free of heavy imports: the adapter module (and through it the framework it
measures) is the only thing a worker imports besides the standard library.

Protocol over a :mod:`multiprocessing` connection, one message each way at a time:

* child -> parent, once: ``("ready", info)`` with :func:`describe`'s mapping, or
  ``("failed", "ModuleNotFoundError: ...")`` if the adapter could not be loaded;
* parent -> child: ``(workload_key, loops, size)``, answered by ``("ok", raw)`` with
  elapsed seconds or a list of latencies, or ``("error", "ExcType: message")``;
  ``None`` asks the child to exit.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import logging
import os
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any

from ._model import PeerAdapter


def load_adapter(spec: str) -> PeerAdapter:
    """Import ``"package.module:Class"``, instantiate it and call its ``load()``."""
    module_name, _, attribute = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    adapter = cls()
    if not isinstance(adapter, PeerAdapter):
        raise TypeError(f"{spec} is not a PeerAdapter")
    adapter.load()
    return adapter


def describe(adapter: PeerAdapter) -> dict[str, Any]:
    """What the parent needs to plan the runs and to label the results."""
    return {
        "name": adapter.name,
        "distribution": adapter.distribution,
        "version": distribution_version(adapter.distribution),
        "concurrency": adapter.concurrency,
        "unsupported": dict(adapter.unsupported),
        "caps": {key: [cap, why] for key, (cap, why) in adapter.caps.items()},
    }


def distribution_version(distribution: str | None) -> str | None:
    """The installed version of ``distribution``, if any."""
    if distribution is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def quiet() -> None:
    """No log records or warnings from the frameworks while they are measured."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")


def run_once(adapter: PeerAdapter, key: str, loops: int, size: int) -> tuple[str, Any]:
    """One measured run after a full collection: ``("ok", raw)`` or ``("error", text)``."""
    gc.collect()
    try:
        raw = adapter.run(key, loops, size)
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    return "ok", raw if isinstance(raw, float) else [float(value) for value in raw]


def main(spec: str, connection: Connection) -> None:
    """Entry point of a worker process (``multiprocessing`` spawn target)."""
    # The parent prints the table on stdout: whatever a framework prints goes to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    quiet()
    try:
        adapter = load_adapter(spec)
    except BaseException as exc:
        connection.send(("failed", f"{type(exc).__name__}: {exc}"))
        connection.close()
        return
    connection.send(("ready", describe(adapter)))
    while True:
        try:
            request = connection.recv()
        except EOFError:
            break
        if request is None:
            break
        key, loops, size = request
        connection.send(run_once(adapter, key, loops, size))
    connection.close()
