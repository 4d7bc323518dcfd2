"""``mister-smith demo --mcp``: the survey team's file tools come from ``mcp serve`` run as
a supervised stdio server, which is killed during the run and restarted."""

from __future__ import annotations

import io
import re

from mister_smith.cli._demo import PACKAGE_ROOT, DemoOptions, run_demo


async def test_demo_with_file_tools_over_mcp_survives_the_server_being_killed() -> None:
    out = io.StringIO()
    options = DemoOptions(mcp=True, latency=0.0, workspace=PACKAGE_ROOT / "tools")
    code = await run_demo(options, out)
    output = out.getvalue()
    assert code == 0, output[-3000:]
    assert re.search(r"file tools +from MCP server 'files' \(stdio, pid \d+\)", output)
    assert re.search(
        r"connection: McpServerUnavailable: MCP server 'files' was killed → restart "
        r"\(by mcp:files\)",
        output,
    )
    assert "task        completed" in output
    assert re.search(r"list_directory +\d+ calls +ok \d+ +failed 0", output)
    match = re.search(
        r"messages accepted = handled \+ dead-lettered: (\d+) = (\d+) \+ (\d+)  OK", output
    )
    assert match is not None
    accepted, handled, dead = map(int, match.groups())
    assert accepted == handled + dead
