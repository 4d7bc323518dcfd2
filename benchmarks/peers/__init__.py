"""Peers, side by side: the same actor workloads on ours and on other frameworks.

Run ``nox -s bench_peers [-- --quick]``: it installs triotp, pykka, thespian and
autogen-core into that session's own virtualenv (never into our dependencies) and runs
``python -m benchmarks.peers``, which prints one table and writes
``benchmarks/peers_results.json``. A peer that failed to install or import, or cannot
run a workload, shows as ``n/a (reason)``; nothing is skipped silently.

Workloads (:mod:`._model`), each timed with ``time.perf_counter`` inside the side's own
concurrency model, several rounds, medians:

* ``tell``: one sender, one actor, N messages, until the actor has handled the last;
* ``ask``: request/reply round-trip latency, p50 and p99;
* ``fanout``: one tell to each of 1,000 started actors, until all have handled it;
* ``spawn_stop``: start N actors (10,000; fewer where each actor is an OS thread,
  and the table says so), then stop them all;
* ``restart``: crash a supervised permanent actor, until it answers again (p50, p99).

Sides run the way their users run them (one adapter module each, its docstring says
how): ours and triotp in ``trio.run``, pykka on threads, thespian on the in-process
``simpleSystemBase``, autogen-core on asyncio's ``SingleThreadedAgentRuntime``.

Why not the harness's case types: :class:`~benchmarks.Throughput` and friends pair
*ours* with *one* raw-Trio baseline and run both inside ``trio.run``. Here there are
five sides, three of them not Trio (threads, a synchronous loop, asyncio), and a peer
may hang or fail to import; so this package has a small runner of its own
(:mod:`._runner`): each side in its own worker process for the whole run, one warm-up
then rounds that rotate which side goes first, a time limit per run (a hung side is
killed and shown as timed out). It keeps the harness's contracts (a run returns
elapsed seconds for ``loops`` operations, or one latency per operation), its
``Better`` directions, its percentile method, its machine record and JSON writer.
"""
