"""``mister-smith demo --durable``: the first process ends midway through a supervised
fault, the second replays what it left pending and finishes the index."""

from __future__ import annotations

import io
import re

from mister_smith.cli._demo import PACKAGE_ROOT
from mister_smith.cli._durable_demo import DurableDemoOptions, run_durable_demo


async def test_durable_demo_finishes_in_a_second_process_with_the_replayed_messages() -> None:
    workspace = PACKAGE_ROOT / "actors"
    files = sorted(workspace.rglob("*.py"))
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in files)
    out = io.StringIO()
    code = await run_durable_demo(DurableDemoOptions(workspace, latency=0.0), out)
    output = out.getvalue()
    assert code == 0, output[-3000:]
    half = len(files) // 2
    assert f"run 1  fault armed: the process ends after {half} files" in output
    assert "run 1  the root supervisor gave up (ResourceError: injected fault" in output
    assert re.search(r"process 1 ended \(exit code 1\); starting it again", output)
    replayed = re.search(
        r"run 2  spawned the durable actor 'indexer': (\d+) messages replayed", output
    )
    assert replayed is not None
    assert 0 < int(replayed.group(1)) <= len(files) - half
    assert (
        f"run 2  told {len(files)} files: 0 accepted, {len(files)} refused as duplicates" in output
    )
    assert f"run 2  index complete: {len(files)} of {len(files)} files, {lines} lines" in output
    match = re.search(
        r"run 2  messages accepted = handled \+ dead-lettered: (\d+) = (\d+) \+ (\d+)  OK "
        r"\(replayed (\d+)\)",
        output,
    )
    assert match is not None
    accepted, handled, dead, counted = map(int, match.groups())
    assert accepted == handled + dead == counted == int(replayed.group(1))
