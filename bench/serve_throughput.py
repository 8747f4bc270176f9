"""Serving throughput: `cotdistill serve` with micro-batching against one question per generation,
the same student, questions and clients in one run.

Each setting starts `cotdistill serve` as a user would (its own process, on 127.0.0.1), then
CLIENTS concurrent clients each send single-question `POST /v1/predict` requests until every
question is answered; one client alone measures the latency batching adds when nobody shares.
Without `--run`, the demo's `ft_cot` student is trained first (3,000 steps: about 3 minutes on 2 cores).

    python bench/serve_throughput.py --out runs/serve_throughput [--run CONFIG] [--method ft_cot]
        [--clients 16] [--questions 128] [--steps 3000] [--quick]

Prints the table last; writes OUT/summary.json = {"settings": {NAME: {"clients": c,
"questions_per_s": q, "latency_p50_s": ..., "latency_p95_s": ...}}, "ratio": {...},
"same_answers": "k/n", "served_accuracy": a, "setup": {...}}.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cotdistill.runs import RunFolder
from cotdistill.tasks.answers import is_correct, normalize_gold
from cotdistill.tasks.schema import AnswerKind

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)

ENTRY = Path(sys.executable).parent / "cotdistill"
# The demo's task and student (adding five numbers, preset:tiny), ft_cot only: it answers nearly
# every question by 3,000 steps, so generations end where the answer does, as a real student's do.
TRAIN = {"methods": ["ft_cot"], "train": {"keep_checkpoints": False}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_default(out: Path, steps: int) -> Path:
    from importlib.resources import files

    demo = Path(str(files("cotdistill") / "configs" / "demo.yaml"))
    sections = harness.merge(TRAIN, {"out": str(out / "student"),
                                     "train": {"max_steps": steps, "eval_every": max(1, steps // 4)}})
    over = [a for t in harness.flags(sections) for a in ("--set", t)]
    r = subprocess.run([str(ENTRY), "run", str(demo), *over], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"training the default student failed:\n{r.stderr[-3000:]}")
    return RunFolder(out / "student").config


class Server:
    """`cotdistill serve` in its own process, up until the context ends."""

    def __init__(self, config: Path, method: str, max_batch: int, threads: int | None):
        self.port = _free_port()
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        self.proc = subprocess.Popen([str(ENTRY), "serve", str(config), "--method", method, "--port", str(self.port),
                                      "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"cotdistill serve exited: {self.proc.stderr.read()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        sys.exit("cotdistill serve did not come up in 300 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def load(url: str, questions: list[str], clients: int) -> tuple[float, list[float], list[dict]]:
    """`clients` workers share the questions, one per request; (seconds, latencies, answers in order)."""
    answers: list[dict | None] = [None] * len(questions)
    latencies: list[float] = []
    todo = iter(range(len(questions)))

    async def client(http: httpx.AsyncClient):
        for i in todo:
            t0 = time.perf_counter()
            r = await http.post(f"{url}/v1/predict", json={"questions": [questions[i]]})
            r.raise_for_status()
            latencies.append(time.perf_counter() - t0)
            answers[i] = r.json()["predictions"][0]

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return time.perf_counter() - t0, latencies, answers  # type: ignore[return-value]


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "serve_throughput", steps=3000,
                        quick="smoke run: 20 training steps, 12 questions, 4 clients")
    ap.add_argument("--run", type=Path, help="a trained run's config (default: train a tiny ft_cot student)")
    ap.add_argument("--method", default="ft_cot")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--questions", type=int, default=128)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the server")
    args = harness.parse(ap, argv)
    if args.quick:
        args.steps, args.questions, args.clients, args.max_batch = 20, 12, 4, 8
    config = args.run or train_default(args.out, args.steps)
    test = RunFolder(config.parent).test
    records = [json.loads(l) for l in test.read_text().splitlines() if l.strip()][:args.questions]
    questions = [r["question"] for r in records]
    if not questions:
        sys.exit(f"{test}: no test questions")
    settings = {"one_per_generation": (1, args.clients), f"batched_{args.max_batch}": (args.max_batch, args.clients),
                "batched_alone": (args.max_batch, 1)}
    rows, answers = {}, {}
    for name, (max_batch, clients) in settings.items():
        with Server(config, args.method, max_batch, args.threads) as srv:
            asyncio.run(load(srv.url, questions[:2], 1))  # warm-up: first-call allocations are not serving
            qs = questions if clients > 1 else questions[: max(4, len(questions) // 4)]
            dt, lat, got = asyncio.run(load(srv.url, qs, clients))
            stats = httpx.get(f"{srv.url}/health").json()["served"]
        answers[name] = got
        lat.sort()
        rows[name] = {"clients": clients, "max_batch": max_batch, "questions": len(qs),
                      "questions_per_s": round(len(qs) / dt, 3), "latency_p50_s": round(statistics.median(lat), 3),
                      "latency_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3),
                      "largest_batch": stats["largest_batch"], "batches": stats["batches"]}
    base, batched = rows["one_per_generation"], rows[f"batched_{args.max_batch}"]
    ratio = {"throughput_batched_over_one": round(batched["questions_per_s"] / base["questions_per_s"], 2)}
    a, b = answers["one_per_generation"], answers[f"batched_{args.max_batch}"]
    same = sum(x["generation"] == y["generation"] for x, y in zip(a, b))
    right = sum(is_correct(x["answer"], normalize_gold(r["answer"], r["kind"], r.get("choices")), AnswerKind(r["kind"]))
                for x, r in zip(b, records))
    harness.write_summary(args.out, {"settings": rows, "ratio": ratio, "same_answers": f"{same}/{len(a)}",
                                           "served_accuracy": round(100 * right / len(b), 2),
                                           "setup": {"run": str(config), "method": args.method, "quick": args.quick,
                                                     "threads": args.threads}})
    print(f"{len(questions)} questions from {test}; {same}/{len(a)} generations identical batched and one at a "
          f"time; {right} answered right")
    harness.print_table(["setting", "clients", "q/s", "p50 s", "p95 s", "largest batch"],
                        [[name, r["clients"], f"{r['questions_per_s']:.2f}", f"{r['latency_p50_s']:.3f}",
                          f"{r['latency_p95_s']:.3f}", r["largest_batch"]] for name, r in rows.items()])
    print(f"batched / one per generation: {ratio['throughput_batched_over_one']:.2f}x the questions per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
