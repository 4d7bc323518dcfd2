"""MCP tool results as our tool results: text, JSON, and binary content by reference.

A model reads text; images, audio and binary resources are kept aside in a bounded
:class:`BlobStore` and stand in the result as a small reference record
(``{"type": "image", "mime_type", "bytes", "ref"}``) that code can resolve with
:meth:`BlobStore.get`. Every result is measured before anything is decoded or kept: past
``max_bytes`` it is refused with :class:`McpResultTooLarge`, never truncated silently.
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import json
from typing import Any

import attrs
import mcp_types

from ._errors import McpBlobMissing, McpProtocolError, McpResultTooLarge, McpToolFailed

ERROR_TEXT_CHARS = 2_000
"""Characters of a failing tool's text kept in the error raised for it."""


@attrs.frozen
class Blob:
    """Binary content a tool returned.

    Attributes:
        ref: Its reference, as it appears in the tool result.
        mime_type: What it is (e.g. ``"image/png"``).
        data: The bytes.
    """

    ref: str
    mime_type: str
    data: bytes


@attrs.define(eq=False)
class BlobStore:
    """Keeps the latest binary results, at most ``max_bytes`` together (oldest dropped).

    Args:
        prefix: Start of every reference (e.g. ``"mcp://files/blob/"``).
        max_bytes: Bytes kept at most.
    """

    prefix: str
    max_bytes: int
    _blobs: collections.OrderedDict[str, Blob] = attrs.field(
        factory=collections.OrderedDict, init=False
    )
    _bytes: int = attrs.field(default=0, init=False)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    @property
    def size(self) -> int:
        """Bytes kept now."""
        return self._bytes

    def put(self, mime_type: str, data: bytes) -> str:
        """Keep ``data``; return its reference (a blob larger than the store is refused)."""
        if len(data) > self.max_bytes:
            raise McpResultTooLarge(
                f"a {len(data)}-byte {mime_type} blob is larger than the blob store "
                f"({self.max_bytes} bytes, max_blob_bytes)"
            )
        ref = f"{self.prefix}{next(self._ids)}"
        self._blobs[ref] = Blob(ref, mime_type, data)
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            _, dropped = self._blobs.popitem(last=False)
            self._bytes -= len(dropped.data)
        return ref

    def get(self, ref: str) -> Blob:
        """The blob kept under ``ref``.

        Raises:
            McpBlobMissing: never made, or dropped to stay within ``max_bytes``.
        """
        blob = self._blobs.get(ref)
        if blob is None:
            raise McpBlobMissing(f"no blob {ref!r} is kept (dropped, or never made)")
        return blob


def _estimated_size(block: object) -> int:
    """Bytes a content block will take once decoded (base64 counted as 3/4)."""
    if isinstance(block, mcp_types.TextContent):
        return len(block.text.encode("utf-8", "replace"))
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return len(block.data) * 3 // 4
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return len(resource.text.encode("utf-8", "replace"))
        return len(resource.blob) * 3 // 4
    return 256  # a resource link: a few short strings


def _decode(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise McpProtocolError(f"{what} is not valid base64: {error}") from error


def _block(block: object, blobs: BlobStore) -> Any:
    if isinstance(block, mcp_types.TextContent):
        return {"type": "text", "text": block.text}
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        data = _decode(block.data, f"{block.type} content")
        ref = blobs.put(block.mime_type, data)
        return {"type": block.type, "mime_type": block.mime_type, "bytes": len(data), "ref": ref}
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        uri = str(resource.uri)
        if isinstance(resource, mcp_types.TextResourceContents):
            return {"type": "resource", "uri": uri, "text": resource.text}
        mime = resource.mime_type or "application/octet-stream"
        data = _decode(resource.blob, f"resource {uri!r}")
        ref = blobs.put(mime, data)
        return {"type": "resource", "uri": uri, "mime_type": mime, "bytes": len(data), "ref": ref}
    if isinstance(block, mcp_types.ResourceLink):
        return {
            "type": "resource_link",
            "uri": str(block.uri),
            "name": block.name,
            "mime_type": block.mime_type,
        }
    raise McpProtocolError(f"unknown content block {type(block).__name__}")


def error_text(result: mcp_types.CallToolResult) -> str:
    """The text of a failing result, cut to :data:`ERROR_TEXT_CHARS`."""
    texts = [b.text for b in result.content if isinstance(b, mcp_types.TextContent)]
    text = "; ".join(texts) or "(no message)"
    if len(text) > ERROR_TEXT_CHARS:
        text = text[:ERROR_TEXT_CHARS] + f"... ({len(text)} characters)"
    return text


def tool_result(
    result: mcp_types.CallToolResult, *, tool: str, max_bytes: int, blobs: BlobStore
) -> object:
    """What a call of ``tool`` returns on our side.

    - ``isError`` → :class:`McpToolFailed` with the tool's text.
    - structured content (JSON) → that value;
    - a single text block → the text; no content → ``""``;
    - anything else → a list of blocks: ``{"type": "text", "text"}``, image and audio
      references, embedded resources (text inline, binary by reference), links.

    Raises:
        McpToolFailed: the tool reported a failure.
        McpResultTooLarge: the result is larger than ``max_bytes``.
        McpProtocolError: binary content that is not valid base64.
    """
    if result.is_error:
        raise McpToolFailed(f"MCP tool {tool!r} failed: {error_text(result)}")
    size = sum(_estimated_size(block) for block in result.content)
    if result.structured_content is not None:
        size += len(json.dumps(result.structured_content, default=str))
    if size > max_bytes:
        raise McpResultTooLarge(
            f"MCP tool {tool!r} returned about {size} bytes, more than its {max_bytes}-byte "
            "cap (max_result_bytes)"
        )
    if result.structured_content is not None:
        return result.structured_content
    content = result.content
    if not content:
        return ""
    if len(content) == 1 and isinstance(content[0], mcp_types.TextContent):
        return content[0].text
    return [_block(block, blobs) for block in content]
