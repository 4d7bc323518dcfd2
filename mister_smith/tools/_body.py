"""Reading HTTP response bodies without trusting them: a cap on *decoded* bytes, at most
one content-encoding, and a decompression-ratio limit.

httpx decodes each network chunk in one go, so a 1 KiB chunk of a gzip bomb becomes a
gigabyte before any cap applies, and it accepts stacked encodings (``gzip, gzip``) whose
outer layer is tiny. :class:`BodyDecoder` is a sans-IO decoder that asks zlib for at most
a bounded number of bytes at a time (``max_length``), so memory never exceeds the cap;
:func:`read_decoded_body` feeds it the raw bytes of an httpx response. The HTTP tool and
the HTTP model adapters both read their bodies this way.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator, Iterable
from typing import TYPE_CHECKING, cast

import attrs
import trio

from ..errors import ResponseBodyRejected

if TYPE_CHECKING:
    import httpx

DECODABLE_ENCODINGS = "gzip, deflate"
"""The ``Accept-Encoding`` to send: exactly the codings :class:`BodyDecoder` can decode."""

_STEP = 64 * 1024  # decoded bytes asked of zlib at a time; the ratio is checked after each
_MAX_DRAIN = 64  # chunks taken after stopping, at most, before giving up on a checkpoint
_GZIP = 16 + zlib.MAX_WBITS
_CODINGS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}


@attrs.frozen
class BodyLimits:
    """How much of a response body is read, and how much compression is believed.

    Attributes:
        max_bytes: Most decoded bytes kept; the rest is not read (>= 1).
        max_ratio: Most decoded bytes per raw (compressed) byte consumed; a body that
            decompresses more is refused as a bomb (>= 1). Ordinary text compresses
            5-20x; zlib's best is about 1000x (long runs of one byte).
        ratio_grace: Decoded bytes allowed before the ratio is enforced, so that small,
            very compressible bodies (a page of spaces) still pass (>= 0).
    """

    max_bytes: int = attrs.field(validator=attrs.validators.ge(1))
    max_ratio: float = attrs.field(default=100.0, validator=attrs.validators.ge(1.0))
    ratio_grace: int = attrs.field(default=64 * 1024, validator=attrs.validators.ge(0))


@attrs.frozen
class DecodedBody:
    """A body read under :class:`BodyLimits`.

    Attributes:
        content: The decoded bytes (at most ``max_bytes``).
        truncated: Whether more was there than ``max_bytes`` (the rest was not read).
        raw_bytes: Raw (still encoded) bytes received.
    """

    content: bytes
    truncated: bool
    raw_bytes: int


def content_coding(values: Iterable[str]) -> str | None:
    """The one content-coding named by ``Content-Encoding`` header ``values``.

    ``identity`` and empty entries are ignored.

    Raises:
        ResponseBodyRejected: more than one coding (stacked, e.g. ``gzip, gzip``), or
            one that :class:`BodyDecoder` cannot decode.
    """
    codings = [
        coding
        for value in values
        for part in value.split(",")
        if (coding := part.strip().lower()) and coding != "identity"
    ]
    if len(codings) > 1:
        raise ResponseBodyRejected(
            f"stacked content-encodings {', '.join(codings)[:200]!r}: at most one is accepted"
        )
    if codings and codings[0] not in _CODINGS:
        raise ResponseBodyRejected(
            f"unsupported content-encoding {codings[0][:80]!r} "
            f"(accepted: {', '.join(sorted(_CODINGS))})"
        )
    return codings[0] if codings else None


def _zlib_header(start: bytes) -> bool:
    """Whether ``start`` begins like a zlib stream (method 8, header checksum)."""
    if start[0] & 0x0F != 8:
        return False
    return len(start) < 2 or (start[0] << 8 | start[1]) % 31 == 0


class BodyDecoder:
    """Decodes a body chunk by chunk, never holding more than ``limits.max_bytes``.

    Feed raw chunks to :meth:`feed`; it returns their decoded bytes. Once the cap is
    reached :attr:`truncated` is set and further input is ignored (stop reading).
    Call :meth:`finish` after the last chunk.

    Args:
        coding: ``None`` (identity), ``"gzip"``/``"x-gzip"`` or ``"deflate"`` (zlib or
            raw deflate); see :func:`content_coding`.
        limits: The cap and the ratio limit.

    Raises:
        ResponseBodyRejected: from :meth:`feed`/:meth:`finish` when the ratio limit is
            passed or the compressed data is corrupt.
    """

    def __init__(self, coding: str | None, limits: BodyLimits) -> None:
        self.limits = limits
        self.coding = coding
        self._wbits = _CODINGS[coding] if coding is not None else None
        self._inflater = None if self._wbits is None else zlib.decompressobj(self._wbits)
        self._sniff = coding == "deflate"  # zlib wrapper or raw deflate: decided on byte 1
        self._raw = 0
        self._decoded = 0
        self.truncated = False

    @property
    def raw_bytes(self) -> int:
        """Raw bytes fed so far."""
        return self._raw

    @property
    def decoded_bytes(self) -> int:
        """Decoded bytes returned so far."""
        return self._decoded

    def feed(self, raw: bytes) -> bytes:
        """The decoded bytes of ``raw`` (cut at the cap; then :attr:`truncated` is set)."""
        if self.truncated or not raw:
            return b""
        self._raw += len(raw)
        if self._inflater is None:
            return self._keep(raw)
        if self._sniff:
            self._sniff = False
            if not _zlib_header(raw):  # raw deflate, as some servers send for "deflate"
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inflate(raw)

    def finish(self) -> bytes:
        """Whatever the decompressor still holds (bounded like :meth:`feed`)."""
        if self.truncated or self._inflater is None:
            return b""
        out = self._inflate(b"")
        if not self.truncated:
            out += self._keep(self._inflater.flush())
        return out

    def _keep(self, data: bytes) -> bytes:
        room = self.limits.max_bytes - self._decoded
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self._decoded += len(data)
        return data

    def _inflate(self, data: bytes) -> bytes:
        out = bytearray()
        inflater = self._inflater
        assert inflater is not None
        while not self.truncated:
            room = self.limits.max_bytes - self._decoded
            try:
                # one byte more than there is room for tells a body that is too long
                piece = inflater.decompress(data, min(_STEP, room + 1))
            except zlib.error as exc:
                raise ResponseBodyRejected(
                    f"corrupt {self.coding} body after {self._raw} bytes: {exc}"
                ) from None
            data = inflater.unconsumed_tail
            out += self._keep(piece)
            self._check_ratio(len(data))
            if inflater.eof and inflater.unused_data and self._wbits == _GZIP:
                data = inflater.unused_data  # a further gzip member
                inflater = self._inflater = zlib.decompressobj(_GZIP)
            elif not piece and not data:
                break
            elif inflater.eof:
                break  # trailing bytes after a deflate stream are ignored
        return bytes(out)

    def _check_ratio(self, unconsumed: int) -> None:
        limits = self.limits
        consumed = max(1, self._raw - unconsumed)
        if self._decoded > limits.ratio_grace and self._decoded > limits.max_ratio * consumed:
            raise ResponseBodyRejected(
                f"{self.coding} body decompresses more than {limits.max_ratio:g} times its "
                f"size ({self._decoded} bytes from {consumed}): refused as a compression bomb"
            )


async def read_decoded_body(response: httpx.Response, limits: BodyLimits) -> DecodedBody:
    """Read ``response``'s body (opened with ``stream``) under ``limits``.

    Raw bytes are read from the network and decoded by a :class:`BodyDecoder`; once the
    cap is reached reading stops (the caller closes the response), so a never-ending
    or huge body costs at most ``max_bytes`` of memory plus one network chunk. A
    response built in memory (already read, e.g. by ``httpx.MockTransport``) was decoded
    by httpx; only the cap is applied to it.

    Raises:
        ResponseBodyRejected: stacked or unsupported content-encoding, a compression
            bomb, or corrupt compressed data.
        httpx.TransportError: the connection failed while reading.
    """
    coding = content_coding(response.headers.get_list("content-encoding"))
    if response.is_stream_consumed:
        # built in memory (e.g. by ``httpx.MockTransport``) and already decoded by httpx:
        # only the cap applies
        decoder = BodyDecoder(None, limits)
        content = decoder.feed(response.content)
        return DecodedBody(content, decoder.truncated, decoder.raw_bytes)
    decoder = BodyDecoder(coding, limits)
    body = bytearray()
    refused: ResponseBodyRejected | None = None
    extra = 0
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())  # httpx's is a generator
    # Reading stops by cancelling the read in progress, not with ``break``: httpx streams
    # through several nested generators that a break would leave suspended (Trio then
    # warns when they are collected); a cancellation finishes them all.
    with trio.CancelScope() as stop:
        async with contextlib.aclosing(raw) as chunks:
            async for chunk in chunks:
                if stop.cancel_called:
                    extra += 1
                    if extra > _MAX_DRAIN:  # a stream that never checkpoints
                        break
                    continue
                try:
                    body += decoder.feed(chunk)
                except ResponseBodyRejected as exc:
                    refused = exc
                if refused is not None or decoder.truncated:
                    stop.cancel()
    if refused is not None:
        raise refused
    if not decoder.truncated:
        body += decoder.finish()
    return DecodedBody(bytes(body), decoder.truncated, decoder.raw_bytes)
