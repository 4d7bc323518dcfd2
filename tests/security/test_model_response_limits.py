"""Model adapters against oversized answers (issue 12, item 4).

Attacks reproduced: a 300 MB answer cost +900 MiB; a never-ending chunked answer grew
until the attempt timeout; compressed answers (bombs, stacked encodings). Each is cut
off at ``max_response_bytes`` with :class:`ModelResponseTooLarge` (a
:class:`MalformedModelResponse`), quickly and in bounded memory. Servers bind 127.0.0.1.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from fake_model_servers import FakeModelServer, Reply, openai_reply, serve_fake

from mister_smith.agents import (
    AnthropicModel,
    HttpModel,
    HttpRetryPolicy,
    MalformedModelResponse,
    Message,
    ModelHTTPError,
    ModelRequest,
    ModelResponseTooLarge,
    OpenAICompatibleModel,
)
from mister_smith.cli._session import http_model
from mister_smith.config import AgentSettings

MIB = 1 << 20
DEFAULT_CAP = AgentSettings().max_response_bytes
REQUEST = ModelRequest([Message.user("go")])
ONCE = HttpRetryPolicy(max_attempts=1)


def endless_answer(
    counter: list[int], chunk_size: int = 64 * 1024
) -> Callable[[], Iterator[bytes]]:
    """A chat-completions answer whose text never ends; ``counter[0]`` counts bytes made."""

    def chunks() -> Iterator[bytes]:
        head = b'{"choices": [{"message": {"role": "assistant", "content": "'
        counter[0] += len(head)
        yield head
        chunk = b"a" * chunk_size
        while True:
            counter[0] += len(chunk)
            yield chunk

    return chunks


async def complete_measured(model: HttpModel) -> tuple[BaseException | None, int, float]:
    """Run one completion; return its error, the peak memory it allocated and the
    seconds it took."""
    tracemalloc.start()
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        await model.complete(REQUEST)
    except Exception as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak, time.perf_counter() - started


async def test_a_300_mb_answer_is_cut_at_the_default_cap_over_a_socket() -> None:
    made = [0]
    app = FakeModelServer()
    app.push(Reply(stream=endless_answer(made), headers=(("content-length", str(300 * 10**6)),)))
    async with (
        serve_fake(app) as url,
        OpenAICompatibleModel("m", base_url=url, require_api_key=False, retry=ONCE) as model,
    ):
        error, peak, seconds = await complete_measured(model)
    assert isinstance(error, ModelResponseTooLarge)
    assert isinstance(error, MalformedModelResponse)
    assert error.limit == DEFAULT_CAP == 4 * MIB
    assert "max_response_bytes" in str(error)
    assert made[0] < 40 * MIB  # the server stopped being read long before 300 MB
    assert peak < 4 * DEFAULT_CAP  # before: +900 MiB (server buffers included here)
    assert seconds < 10


async def test_a_never_ending_chunked_answer_is_cut_off_quickly_and_exactly() -> None:
    made = [0]
    app = FakeModelServer()
    app.push(Reply(stream=endless_answer(made, chunk_size=16 * 1024)))
    cap = 256 * 1024
    async with OpenAICompatibleModel(
        "m",
        base_url="http://fake",
        require_api_key=False,
        transport=app.transport(),
        max_response_bytes=cap,
        retry=ONCE,
    ) as model:
        error, peak, _ = await complete_measured(model)
        assert model.breaker.statistics().failures == 1  # a runaway endpoint is a failure
    assert isinstance(error, ModelResponseTooLarge)
    assert made[0] <= cap + 3 * 16 * 1024  # reading stopped at the cap
    assert peak < 4 * cap


async def test_never_ending_answer_over_a_socket_ends_long_before_the_attempt_timeout() -> None:
    made = [0]
    app = FakeModelServer()
    app.push(Reply(stream=endless_answer(made)))
    async with (
        serve_fake(app) as url,
        AnthropicModel(
            "c", base_url=url, api_key="k", max_response_bytes=MIB, attempt_timeout=60, retry=ONCE
        ) as model,
    ):
        error, _, seconds = await complete_measured(model)
    assert isinstance(error, ModelResponseTooLarge)
    assert seconds < 10  # before: it grew for the whole 60 s attempt timeout


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip, gzip", gzip.compress(gzip.compress(bytes(8 * MIB)))),
        ("gzip", gzip.compress(b'{"choices": [' + b" " * (16 * MIB) + b"]}")),
        ("br", b"\x00" * 100),
    ],
    ids=["stacked", "bomb", "unsupported"],
)
async def test_compressed_answers_are_refused(encoding: str, body: bytes) -> None:
    app = FakeModelServer()
    app.push(
        Reply(
            stream=lambda: iter([body[i : i + 8192] for i in range(0, len(body), 8192)]),
            headers=(("content-encoding", encoding),),
        )
    )
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", require_api_key=False, transport=app.transport(), retry=ONCE
    ) as model:
        error, peak, _ = await complete_measured(model)
    assert isinstance(error, ModelResponseTooLarge)
    assert "refused" in str(error)
    assert peak < DEFAULT_CAP


async def test_a_compressed_answer_within_the_cap_is_read() -> None:
    reply = openai_reply("hello " * 1000)
    app = FakeModelServer()
    packed = gzip.compress(reply.encoded())
    app.push(Reply(stream=lambda: iter([packed]), headers=(("content-encoding", "gzip"),)))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", require_api_key=False, transport=app.transport()
    ) as model:
        response = await model.complete(REQUEST)
    assert response.text == "hello " * 1000
    assert app.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def test_a_huge_error_body_is_read_only_for_its_excerpt() -> None:
    made = [0]

    def error_body() -> Iterator[bytes]:
        yield b'{"error": {"message": "overloaded, ' + b"x" * 100
        while True:
            made[0] += 16 * 1024
            yield b"y" * 16 * 1024

    app = FakeModelServer()
    app.push(Reply(400, stream=error_body))
    async with OpenAICompatibleModel(
        "m", base_url="http://fake", require_api_key=False, transport=app.transport()
    ) as model:
        with pytest.raises(ModelHTTPError) as caught:
            await model.complete(REQUEST)
    assert caught.value.status == 400
    assert made[0] <= 96 * 1024  # 64 KiB are read of an error answer
    assert len(str(caught.value)) < 400


def test_the_cap_comes_from_the_agents_config_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert http_model("openai").max_response_bytes == DEFAULT_CAP
    settings = AgentSettings(max_response_bytes=2048)
    assert http_model("openai", None, settings).max_response_bytes == 2048
    assert http_model("anthropic", None, settings).max_response_bytes == 2048
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_response_bytes"):
            OpenAICompatibleModel("m", require_api_key=False, max_response_bytes=bad)  # type: ignore[arg-type]
