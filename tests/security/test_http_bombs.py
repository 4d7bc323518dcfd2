"""HTTP GET tool against compression bombs and endless bodies (issue 12, item 4).

Attacks reproduced: the 1 MiB cap applied to each chunk *after* decompression, so a tiny
response (here a 1,827-byte ``gzip, gzip`` bomb that decodes to 1 GiB; the issue's was
980 bytes) cost +1 GiB; stacked encodings were accepted; a body that never ends. Each
test measures the peak memory of the call with tracemalloc and asserts a bound.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import struct
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import trio
from fake_model_servers import Chunks, FakeModelServer, Reply, serve_fake
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import ResponseBodyRejected
from mister_smith.tools import BodyDecoder, BodyLimits, HttpGetTool, content_coding

CAP = 1_048_576  # the tool's default max_bytes
GIB = 1 << 30

STACKED_BOMB = base64.b64decode(
    "H4sIAAAAAAACA+3coW5TcRyG4XataCY2JqYQ4yZIZkiKAYvYFGIhmZlAottkoDDcCRguABR3AHO7gGViWVALpe1N"
    "LDnv85j/0T/55eQ9+jwbbexMbn6Mx+uP5Zd/X29nuyMAAABg4JZXl5PNGDB6tvr96s0pAAAAMHTv9vem21Hg4ezp"
    "S+cAAACAwfv04vjJ9g+Bu8X7qXMAAADA4B3+vZ5vt4Bfq+8HJ+4BAAAAg/dHMAAAAABSBAMAAACgRTAAAAAAWgQD"
    "AAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMA"
    "AACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAA"
    "ACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAA"
    "oEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAg"
    "RjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBF"
    "MAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYw"
    "AAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAA"
    "AAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAA"
    "AABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAA"
    "AFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAA"
    "WgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABa"
    "BAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoE"
    "AwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQD"
    "AAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMA"
    "AACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAA"
    "ACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAA"
    "oEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAg"
    "RjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBF"
    "MAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYw"
    "AAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAA"
    "AAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAAAFoEAwAAACBGMAAA"
    "AABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAAWgQDAAAAoEUwAAAA"
    "AFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABaBAMAAAAgRjAAAAAA"
    "WgQDAAAAoEUwAAAAAFoEAwAAACBGMAAAAABaBAMAAACgRTAAAAAAWgQDAAAAIEYwAAAAAFoEAwAAAKBFMAAAAABa"
    "BAMAAAAgRjAAAAAAWi7292abLeDj/eLD69Eje/7t5/nb9Tv/D9RnhczI7A8A"
)
"""``gzip(gzip(1 GiB of zero bytes))``: 1,827 bytes (made once with zlib level 9)."""


def inner_layer() -> bytes:
    """The bomb's inner layer: a 1 MiB gzip stream of 1 GiB of zeros (ratio ~1000)."""
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(STACKED_BOMB, 2 * CAP)


def test_the_bomb_is_what_it_claims() -> None:
    inner = inner_layer()
    assert len(STACKED_BOMB) < 2_000
    assert 1_000_000 < len(inner) < 1_100_000
    assert struct.unpack("<I", inner[-4:]) == (GIB,)  # gzip's ISIZE trailer: 1 GiB


async def public(host: str, port: int) -> list[str]:
    await trio.lowlevel.checkpoint()
    return ["93.184.215.14"]


def slices(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def streaming_tool(
    body: Callable[[], Iterator[bytes]], encoding: str | None, **options: Any
) -> HttpGetTool:
    """The tool against a transport that streams ``body()`` (never read whole)."""
    headers = [("content-type", "text/plain")]
    if encoding is not None:
        headers.append(("content-encoding", encoding))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=Chunks(body()))

    return HttpGetTool(
        ["files.example.com"], resolver=public, transport=httpx.MockTransport(handler), **options
    )


async def peak_memory(call: Callable[[], Awaitable[object]]) -> tuple[object, int]:
    """``await call()`` (its result, or the exception it raised) and the peak of the
    memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            outcome: object = await call()
        except Exception as exc:
            outcome = exc
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return outcome, peak


URL = {"url": "https://files.example.com/report.txt"}


async def test_stacked_gzip_bomb_is_refused_before_any_decoding() -> None:
    tool = streaming_tool(lambda: slices(STACKED_BOMB), "gzip, gzip")
    outcome, peak = await peak_memory(lambda: tool.execute(URL))
    assert isinstance(outcome, ResponseBodyRejected)
    assert "stacked content-encodings 'gzip, gzip'" in str(outcome)
    assert peak < CAP // 4


async def test_stacked_bomb_over_a_socket_is_refused() -> None:
    app = FakeModelServer()
    app.push(Reply(200, STACKED_BOMB, (("content-encoding", "gzip"), ("content-encoding", "gzip"))))
    async with serve_fake(app) as url:
        port = httpx.URL(url).port
        tool = HttpGetTool([f"127.0.0.1:{port}"], allow_internal=[f"127.0.0.1:{port}"])
        with pytest.raises(ResponseBodyRejected, match="stacked"):
            await tool.execute({"url": f"{url}/bomb"})


async def test_single_layer_gzip_bomb_hits_the_ratio_limit_in_bounded_memory() -> None:
    inner = inner_layer()
    tool = streaming_tool(lambda: slices(inner), "gzip")
    outcome, peak = await peak_memory(lambda: tool.execute(URL))
    assert isinstance(outcome, ResponseBodyRejected)
    assert "compression bomb" in str(outcome)
    assert peak < CAP  # before: +1 GiB


async def test_a_compressible_body_is_cut_at_the_decoded_cap() -> None:
    text = b"".join(b"line %d of a long and repetitive report\n" % i for i in range(200_000))
    packed = gzip.compress(text)
    assert len(packed) < CAP < len(text)  # small on the wire, big decoded: ratio ~7
    tool = streaming_tool(lambda: slices(packed), "gzip")
    outcome, peak = await peak_memory(lambda: tool.execute(URL))
    assert isinstance(outcome, dict)
    assert outcome["truncated"] is True
    assert outcome["text"].encode() == text[:CAP]
    assert peak < 4 * CAP  # the decoded bytes, the text, one copy


async def test_an_endless_body_is_cut_at_the_cap_quickly() -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"x" * 16_384
        while True:
            sent += len(chunk)
            yield chunk

    tool = streaming_tool(endless, None, max_bytes=256 * 1024)
    outcome, peak = await peak_memory(lambda: tool.execute(URL))
    assert isinstance(outcome, dict)
    assert outcome["truncated"] is True
    assert len(outcome["text"]) == 256 * 1024
    assert sent <= 256 * 1024 + 2 * 16_384  # reading stopped at the cap
    assert peak < 4 * 256 * 1024


async def test_unsupported_encodings_are_refused_and_identity_is_ignored() -> None:
    assert content_coding(["gzip, identity"]) == "gzip"
    assert content_coding(["", "identity"]) is None
    for header in ("br", "gzip, br", "deflate, gzip", "compress"):
        with pytest.raises(ResponseBodyRejected):
            content_coding([header])
    tool = streaming_tool(lambda: iter([b"\x00" * 10]), "br")
    with pytest.raises(ResponseBodyRejected, match="unsupported content-encoding 'br'"):
        await tool.execute(URL)


async def test_corrupt_compressed_data_is_a_typed_error() -> None:
    tool = streaming_tool(lambda: iter([b"\x1f\x8b not really gzip"]), "gzip")
    with pytest.raises(ResponseBodyRejected, match="corrupt gzip body"):
        await tool.execute(URL)


def encode(data: bytes, coding: str | None) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "raw-deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush()
    return data


@given(
    data=st.binary(max_size=4096) | st.text(max_size=3000).map(str.encode),
    coding=st.sampled_from([None, "gzip", "deflate", "raw-deflate"]),
    cap=st.integers(1, 5000),
    cuts=st.lists(st.integers(0, 5000), max_size=8),
)
def test_decoder_returns_exactly_the_first_cap_bytes(
    data: bytes, coding: str | None, cap: int, cuts: list[int]
) -> None:
    raw = encode(data, coding)
    header = "deflate" if coding == "raw-deflate" else coding
    decoder = BodyDecoder(header, BodyLimits(cap, max_ratio=1e9))
    points = sorted({0, len(raw), *(c for c in cuts if c < len(raw))})
    out = b"".join(decoder.feed(raw[a:b]) for a, b in itertools.pairwise(points))
    if not decoder.truncated:
        out += decoder.finish()
    assert out == data[:cap]
    assert decoder.truncated == (len(data) > cap)
