"""The observer page and its JSON view, served by a running runtime on 127.0.0.1."""

from __future__ import annotations

import json

import attrs
import httpx
import pytest
import trio

from mister_smith import (
    Actor,
    ActorContext,
    AgentConfig,
    ComponentRecovered,
    MonitoringSettings,
    RuntimeManager,
    tool,
)
from mister_smith.events import CircuitStateChanged, EventBus
from mister_smith.monitoring import (
    FrameworkMetrics,
    Observer,
    ObserverLimits,
    serve_monitoring,
)
from mister_smith.resources import HealthMonitor
from mister_smith.supervision import TreeSnapshot

SECRET = "sk-do-not-show-this"


class Parser(Actor):
    async def handle(self, message: str, ctx: ActorContext) -> str:
        if message.startswith("poison"):
            raise ValueError(f"cannot parse {SECRET}")
        return message.upper()


@tool
async def shout(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper()


def _find(node: dict[str, object], name: str) -> dict[str, object] | None:
    if node["name"] == name:
        return node
    children = node["children"]
    assert isinstance(children, list)
    for child in children:
        found = _find(child, name)
        if found is not None:
            return found
    return None


async def test_the_json_view_of_a_running_runtime() -> None:
    config = AgentConfig(monitoring=MonitoringSettings(http_port=0))
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        base = f"http://127.0.0.1:{runtime.http_port}"
        role = runtime.identities.register_role("caller")
        runtime.tool_bus.register_tool(shout, roles=[role])
        caller = runtime.identities.mint("caller", roles=[role])
        assert await runtime.tool_bus.call(caller, "shout", {"text": "hi"}) == "HI"
        parser = await runtime.actor_system.spawn(Parser, name="parser")
        with pytest.raises(Exception, match="parser"):
            await parser.ask(f"poison {SECRET}", timeout=5)
        await runtime.events.wait_for_event(
            ComponentRecovered,
            lambda event: event.child == "parser",
            timeout=5,
            include_history=True,
        )
        assert await parser.ask("ok", timeout=5) == "OK"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            response = await client.get("/observer.json")
        await runtime.graceful_shutdown()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert SECRET not in response.text  # no message contents, no error texts
    view = response.json()
    assert isinstance(view["now"], float)

    tree = view["tree"]
    assert tree["root"]["kind"] == "supervisor"
    assert tree["root"]["state"] == "running"
    assert tree["omitted"] == 0
    node = _find(tree["root"], "parser")
    assert node is not None
    assert node["restarts"] == 1
    assert node["state"] == "running"
    assert _find(tree["root"], "http") is not None  # the server itself is supervised

    (actor,) = [row for row in view["actors"]["items"] if row["name"] == "parser"]
    assert actor["restarts"] == 1
    assert actor["dead_lettered"] == 1  # the poison message
    assert actor["handled"] == 1
    assert actor["capacity"] > 0
    assert actor["status"] in ("idle", "busy")

    (shout_row,) = view["tools"]["items"]
    assert (shout_row["name"], shout_row["calls"], shout_row["succeeded"]) == ("shout", 1, 1)
    assert shout_row["p50"] >= 0

    decisions = [d for d in view["decisions"] if d["child"] == "parser"]
    assert decisions[-1]["error_type"] == "ValueError"
    assert decisions[-1]["action"] == "restart"
    types = {event["type"] for event in view["events"]}
    assert {"SupervisionDecision", "ComponentRecovered"} <= types
    dead = [event for event in view["events"] if event["type"] == "DeadLetter"]
    assert dead
    assert dead[-1]["fields"]["reason"] == "crashed while handling it"


async def test_the_page_its_script_and_methods() -> None:
    config = AgentConfig(monitoring=MonitoringSettings(http_port=0))
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        base = f"http://127.0.0.1:{runtime.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            page = await client.get("/observer")
            script = await client.get("/observer.js")
            head = await client.head("/observer")
            post = await client.post("/observer.json")
        await runtime.graceful_shutdown()
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="observer.js" defer></script>' in page.text
    assert "http://" not in page.text  # no external assets
    assert "https://" not in page.text
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert 'fetch("observer.json"' in script.text
    assert "innerHTML" not in script.text  # names are inserted as text only
    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 405


async def test_no_observer_no_paths() -> None:
    bus = EventBus()
    health = HealthMonitor([], events=bus)
    metrics = FrameworkMetrics()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=5) as client:
        port = await nursery.start(
            lambda task_status: serve_monitoring(
                "127.0.0.1", 0, health=health, registry=metrics.registry, task_status=task_status
            )
        )
        response = await client.get(f"http://127.0.0.1:{port}/observer.json")
        nursery.cancel_scope.cancel()
    assert response.status_code == 404


@attrs.frozen
class Stats:
    name: str
    queued: int
    capacity: int = 10
    in_flight: int = 0


@attrs.frozen
class FakeActor:
    stats: Stats

    def statistics(self) -> Stats:
        return self.stats


def test_large_systems_are_cut_to_the_limits_and_say_so() -> None:
    leaves = tuple(TreeSnapshot(f"a{i}", "child", "running") for i in range(10))
    tree = TreeSnapshot("root", "supervisor", "running", 0, leaves)
    actors = [FakeActor(Stats(f"a{i}", queued=i)) for i in range(5)]
    bus = EventBus()
    for index in range(30):
        bus.emit(CircuitStateChanged(breaker=f"b{index % 3}", old_state="closed", new_state="open"))
    observer = Observer(
        tree=lambda: tree,
        actors=lambda: actors,
        events=bus,
        limits=ObserverLimits(max_nodes=4, max_actors=2, max_events=5, max_breakers=2),
    )
    view = observer.observe()
    assert view["tree"]["nodes"] == 11
    assert len(view["tree"]["root"]["children"]) == 3
    assert view["tree"]["omitted"] == 7
    assert [row["name"] for row in view["actors"]["items"]] == ["a4", "a3"]  # most loaded
    assert view["actors"]["omitted"] == 3
    assert len(view["events"]) == 5
    assert [row["breaker"] for row in view["breakers"]] == ["b2", "b1"]  # latest first
    json.dumps(view)  # plain JSON


def test_an_observer_without_sources_is_an_empty_view() -> None:
    view = Observer().observe()
    assert view == {
        "now": None,
        "tree": None,
        "actors": {"total": 0, "omitted": 0, "items": []},
        "tools": {"total": 0, "omitted": 0, "items": []},
        "breakers": [],
        "decisions": [],
        "events": [],
    }


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_nodes"):
        ObserverLimits(max_nodes=0)
