"""HTTP GET tool against server-side request forgery (issue 12, item 4).

Attacks reproduced: an allow-listed name that resolves to 127.0.0.1 reaches internal
services; the allow-list ignored ports; a redirect to another port (or to an internal
name or address) was followed; DNS rebinding between the check and the connect; other
spellings of loopback (``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``). Servers bind
127.0.0.1 only; the allowed path allow-lists ``127.0.0.1:<port>`` explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
from fake_model_servers import FakeModelServer, Reply, serve_fake
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import InvalidToolInput, ToolPermissionDenied
from mister_smith.tools import HostAllowList, HttpGetTool, InternalAllowList, address_problem

PUBLIC = "93.184.215.14"  # a globally routable address (never contacted: MockTransport)


def text_reply(text: str) -> Reply:
    return Reply(200, text.encode(), (("content-type", "text/plain"),))


def redirect(location: str) -> Reply:
    return Reply(302, b"", (("location", location),))


@asynccontextmanager
async def server(**routes: Reply) -> AsyncIterator[tuple[FakeModelServer, int]]:
    """An HTTP server on 127.0.0.1 answering ``/<name>`` with ``routes[name]``."""

    def respond(path: str, body: object) -> Reply:
        return routes.get(path.strip("/"), Reply(404, b"no such route"))

    app = FakeModelServer(responder=respond)
    async with serve_fake(app) as url:
        yield app, httpx.URL(url).port or 0


async def test_a_name_resolving_to_loopback_is_refused_even_when_allow_listed() -> None:
    async with server(secret=text_reply("internal admin page")) as (app, port):
        tool = HttpGetTool([f"localhost:{port}"])  # the real resolver: localhost -> 127.0.0.1
        with pytest.raises(ToolPermissionDenied, match="loopback") as caught:
            await tool.execute({"url": f"http://localhost:{port}/secret"})
    assert "127.0.0.1" in str(caught.value)
    assert app.requests == []  # never connected


async def test_an_allow_listed_loopback_address_still_needs_allow_internal() -> None:
    async with server(secret=text_reply("internal")) as (app, port):
        tool = HttpGetTool([f"127.0.0.1:{port}"])
        with pytest.raises(ToolPermissionDenied, match="loopback"):
            await tool.execute({"url": f"http://127.0.0.1:{port}/secret"})
        assert app.requests == []
        allowed = HttpGetTool([f"127.0.0.1:{port}"], allow_internal=[f"127.0.0.1:{port}"])
        result = await allowed.execute({"url": f"http://127.0.0.1:{port}/secret"})
    assert result["status"] == 200
    assert result["text"] == "internal"
    assert app.requests[0].headers["host"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"])
async def test_other_spellings_of_loopback_are_refused(spelling: str) -> None:
    async with server(secret=text_reply("internal")) as (app, port):
        tool = HttpGetTool([f"{spelling}:{port}"])
        with pytest.raises(ToolPermissionDenied, match="loopback"):
            await tool.execute({"url": f"http://{spelling}:{port}/secret"})
    assert app.requests == []


async def test_the_allow_list_includes_the_port() -> None:
    async with (
        server(ok=text_reply("public")) as (_, port),
        server(ok=text_reply("redis-ish")) as (other, other_port),
    ):
        tool = HttpGetTool(
            [f"127.0.0.1:{port}"], allow_internal=["127.0.0.0/8"]
        )  # the whole network may be reached, but only on the listed port
        assert (await tool.execute({"url": f"http://127.0.0.1:{port}/ok"}))["status"] == 200
        with pytest.raises(ToolPermissionDenied, match=f"port {other_port}"):
            await tool.execute({"url": f"http://127.0.0.1:{other_port}/ok"})
    assert other.requests == []
    hosts = HostAllowList.parse(["api.example.com", "*.example.org:8443"])
    assert hosts.allows("api.example.com", 443, 443)
    assert hosts.allows("api.example.com", 80, 80)
    assert not hosts.allows("api.example.com", 8080, 443)  # no port: the default only
    assert hosts.allows("a.example.org", 8443, 443)
    assert not hosts.allows("a.example.org", 443, 443)
    assert not hosts.allows("example.org", 8443, 443)


async def test_redirects_are_checked_hop_by_hop() -> None:
    async with server(ok=text_reply("internal")) as (other, other_port), server() as (app, port):
        routes = {
            "/to_other_port": redirect(f"http://127.0.0.1:{other_port}/ok"),
            "/to_mapped": redirect(f"http://[::ffff:127.0.0.1]:{port}/ok"),
            "/to_metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/to_file": redirect("file:///etc/passwd"),
            "/to_here": redirect("/here"),
            "/here": text_reply("fine"),
        }
        app.responder = lambda path, body: routes[path]
        tool = HttpGetTool(
            [f"127.0.0.1:{port}", "169.254.169.254"], allow_internal=[f"127.0.0.1:{port}"]
        )
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(ToolPermissionDenied, match=f"port {other_port}"):
            await tool.execute({"url": f"{base}/to_other_port"})
        with pytest.raises(ToolPermissionDenied, match="link-local"):
            await tool.execute({"url": f"{base}/to_metadata"})
        with pytest.raises(ToolPermissionDenied, match="not on the allow-list"):
            await tool.execute({"url": f"{base}/to_mapped"})
        with pytest.raises(InvalidToolInput, match="scheme 'file'"):
            await tool.execute({"url": f"{base}/to_file"})
        fine = await tool.execute({"url": f"{base}/to_here"})
    assert fine["url"] == f"{base}/here"
    assert fine["text"] == "fine"
    assert other.requests == []


async def test_a_redirect_to_an_allow_listed_name_for_loopback_is_refused() -> None:
    async with server(here=text_reply("fine")) as (app, port):
        app.push(redirect(f"http://localhost:{port}/here"))
        tool = HttpGetTool(
            [f"127.0.0.1:{port}", f"localhost:{port}"], allow_internal=[f"127.0.0.1:{port}"]
        )
        with pytest.raises(ToolPermissionDenied, match=r"'localhost' resolves to 127\.0\.0\.1"):
            await tool.execute({"url": f"http://127.0.0.1:{port}/start"})
    assert [r.path for r in app.requests] == ["/start"]  # the second hop never left


async def test_dns_rebinding_cannot_swap_the_address_after_the_check() -> None:
    """The first lookup says public, any later one says loopback: the request still
    goes to the checked address, with the name in Host and SNI, after one lookup."""
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        await trio.lowlevel.checkpoint()
        lookups.append(host)
        return [PUBLIC] if len(lookups) == 1 else ["127.0.0.1"]

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="public page")

    tool = HttpGetTool(
        ["rebind.example.com"], resolver=rebinding, transport=httpx.MockTransport(handler)
    )
    result = await tool.execute({"url": "https://rebind.example.com/page"})
    assert result["url"] == "https://rebind.example.com/page"
    [request] = seen
    assert request.url.host == PUBLIC
    assert request.headers["host"] == "rebind.example.com"
    assert request.extensions["sni_hostname"] == "rebind.example.com"
    assert lookups == ["rebind.example.com"]


async def test_every_resolved_address_must_be_allowed() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        await trio.lowlevel.checkpoint()
        return [PUBLIC, "10.0.0.7"]

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not connect")

    tool = HttpGetTool(
        ["mixed.example.com"], resolver=mixed, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ToolPermissionDenied, match=r"10\.0\.0\.7, a private address"):
        await tool.execute({"url": "https://mixed.example.com/"})


async def test_headers_are_not_forwarded_to_another_origin() -> None:
    async def public(host: str, port: int) -> list[str]:
        await trio.lowlevel.checkpoint()
        return [PUBLIC]

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["host"] == "a.example.com":
            return httpx.Response(302, headers={"location": "https://b.example.com/"})
        return httpx.Response(200, text="b")

    tool = HttpGetTool(
        ["a.example.com", "b.example.com"],
        resolver=public,
        transport=httpx.MockTransport(handler),
        headers={"authorization": "Bearer for-a-only"},
    )
    await tool.execute({"url": "https://a.example.com/"})
    assert seen[0].headers["authorization"] == "Bearer for-a-only"
    assert "authorization" not in seen[1].headers


BLOCKED = [
    "0.0.0.0",
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "2002:7f00:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "64:ff9b::7f00:1",
    "2001:db8::1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_named(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


PRIVATE_NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
]


@given(st.sampled_from(PRIVATE_NETWORKS), st.integers(0, 2**24 - 1), st.booleans())
def test_every_address_of_an_internal_network_is_refused_in_both_forms(
    network: ipaddress.IPv4Network, offset: int, mapped: bool
) -> None:
    address = network[offset % network.num_addresses]
    form = ipaddress.IPv6Address(f"::ffff:{address}") if mapped else address
    assert address_problem(form) is not None


def test_internal_allow_list_entries_need_a_port_or_a_network() -> None:
    with pytest.raises(ValueError, match="needs a port"):
        InternalAllowList.parse(["127.0.0.1"])
    with pytest.raises(ValueError, match="host bits set"):
        InternalAllowList.parse(["10.0.0.1/8"])
    allowed = InternalAllowList.parse(["db.internal:5432", "10.20.0.0/16"])
    assert allowed.allows("DB.internal.", 5432, ipaddress.ip_address("10.9.9.9"))
    assert not allowed.allows("db.internal", 5433, ipaddress.ip_address("10.9.9.9"))
    assert allowed.allows("x", 1, ipaddress.ip_address("::ffff:10.20.3.4"))
    with pytest.raises(ValueError, match="port"):
        HttpGetTool(["example.com:99999"])
