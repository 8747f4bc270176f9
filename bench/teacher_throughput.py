"""Teacher throughput against a local OpenAI-compatible server with simulated latency:
completions per second at 1, 8, 32, 64 and 128 requests in flight, and the ratio to 1 in flight.
Bar (issue 3): ratio >= 0.8 x the concurrency up to 64.

    python bench/teacher_throughput.py [--latency 0.1] [--rounds 20] [--out runs/teacher_throughput] [--quick]

The server runs in its own process so that it does not share the client's interpreter lock.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cotdistill.teachers.base import GenParams, Request
from cotdistill.teachers.openai_http import OpenAITeacher

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)

LEVELS = [1, 8, 32, 64, 128]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-m", "cotdistill.teachers.fake_server", "--latency", str(latency)],
                         stdout=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip()
    if not url.startswith("http"):
        p.kill()
        raise SystemExit("the local server did not start")
    return p, url


def measure(url: str, concurrency: int, n: int, tag: str) -> float:
    t = OpenAITeacher("teacher-1", url, "COTD_BENCH_KEY", concurrency=concurrency, timeout_s=30)
    reqs = [Request(f"{tag} question {i}", GenParams(max_tokens=32, seed=0)) for i in range(n)]
    t.complete(reqs[: min(n, concurrency)])  # warm the connection pool
    reqs = [Request(f"{tag} question {i} timed", GenParams(max_tokens=32, seed=0)) for i in range(n)]
    t0 = time.perf_counter()
    out = t.complete(reqs)
    dt = time.perf_counter() - t0
    assert len(out) == n and all(c.text for c in out)
    return n / dt


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "teacher_throughput", quick="smoke run: 3 rounds")
    ap.add_argument("--latency", type=float, default=0.1, help="simulated server latency, seconds")
    ap.add_argument("--rounds", type=int, default=20, help="requests per level = rounds x concurrency")
    args = harness.parse(ap, argv)
    rounds = 3 if args.quick else args.rounds
    os.environ["COTD_BENCH_KEY"] = "sk-test"
    server, url = start_server(args.latency)
    try:
        rates = {c: measure(url, c, max(10, rounds * c), f"c{c}") for c in LEVELS}
    finally:
        server.kill()
    ratios = {c: rates[c] / rates[1] for c in LEVELS}
    summary = {"latency_s": args.latency, "rounds": rounds,
               "completions_per_s": {str(c): round(rates[c], 2) for c in LEVELS},
               "ratio_to_1_in_flight": {str(c): round(ratios[c], 2) for c in LEVELS},
               "bars": {f"{c} in flight: rate / 1 in flight >= 0.8 x {c}": harness.bar(round(ratios[c], 2), 0.8 * c,
                                                                                      ratios[c] >= 0.8 * c)
                        for c in LEVELS if c <= 64}}
    harness.write_summary(args.out, summary)
    print(f"\nteacher throughput, {args.latency * 1000:.0f} ms simulated latency, {rounds} rounds per level")
    harness.print_table(["in flight", "completions/s", "ratio to 1"],
                        [[str(c), f"{rates[c]:.1f}", f"{ratios[c]:.2f}"] for c in LEVELS])
    harness.print_bars(summary["bars"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
