"""A stdio "MCP server" that breaks the protocol on purpose (no SDK: a compliant SDK
cannot be made to). It answers the handshake and lists one tool, ``flood``; a call of
``flood`` writes an endless line to stdout, and ``garbage`` writes lines that are not
JSON-RPC before answering.
"""

from __future__ import annotations

import json
import sys

TOOLS = [
    {"name": "flood", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "garbage", "inputSchema": {"type": "object", "properties": {}}},
]


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request: dict[str, object]) -> None:
    method = request.get("method")
    if "id" not in request:
        return  # a notification
    result: dict[str, object]
    if method == "initialize":
        result = {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "0"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and request["params"]["name"] == "flood":  # type: ignore[index]
        chunk = "x" * 65536
        while True:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    elif method == "tools/call":
        for _ in range(3):
            sys.stdout.write("this is not json-rpc\n")
        result = {"content": [{"type": "text", "text": "after garbage"}]}
    else:
        result = {}
    send({"jsonrpc": "2.0", "id": request["id"], "result": result})


if __name__ == "__main__":
    for line in sys.stdin:
        if line.strip():
            answer(json.loads(line))
