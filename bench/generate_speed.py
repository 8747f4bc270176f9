"""Generation speed: batched greedy generation against one question at a time, and the cost of
stop strings, with the same student and prompts in one run.

The student is a from-scratch preset (random weights unless `--model PATH` names a trained one);
the prompts are `ft_cot` prompts of a synthetic task. Every mode generates greedily with the KV
cache through `cotdistill.hf.generate`, the function evaluation uses. Reported: generated tokens
per second (tokens up to and including the end of each answer), as ratios to one-at-a-time.

    python bench/generate_speed.py --out runs/generate_speed [--student preset:small] [--batch-size 128] [--quick]

Prints the table last; writes OUT/summary.json = {"tokens_per_s": {...}, "ratio_to_one_at_a_time":
{...}, "stop_string_cost": ..., "bars": {...}, "setup": {...}}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from cotdistill.hf import generate
from cotdistill.students import load_student
from cotdistill.tasks import load_task

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)

STOP = ["\nQ:"]


def prompts(n: int) -> list[str]:
    cfg = harness.config({"task": {"name": "arithmetic", "n_train": n, "n_test": 1}, "methods": ["ft_cot"]})
    train, _ = load_task(cfg.task)
    return [cfg.method("ft_cot").source(e, False) for e in train[:n]]


def timed(model, tok, ps, seq2seq, batch, max_new, stop=()) -> tuple[float, int, list[str]]:
    t0 = time.perf_counter()
    out = generate(model, tok, ps, seq2seq=seq2seq, max_new_tokens=max_new, batch_size=batch, stop=stop)
    dt = time.perf_counter() - t0
    return dt, sum(g.completion_tokens for g in out), [g.text for g in out]


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "generate_speed", student="preset:small", batch_size=128,
                        quick="smoke run: tiny student, 8 questions, 12 tokens")
    ap.add_argument("--questions", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="batched runs per mode; the fastest counts")
    args = harness.parse(ap, argv)
    args.batch = args.batch_size  # generation batch
    if args.quick:
        args.student, args.questions, args.batch, args.max_new_tokens = "preset:tiny", 8, 8, 12
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok, seq2seq = load_student(args.student, seed=0)
    ps = prompts(args.questions)
    timed(model, tok, ps, seq2seq, args.batch, 8)  # warm-up: first-call allocations at this batch size are not generation
    rows = {}
    dt1, n1, texts1 = timed(model, tok, ps, seq2seq, 1, args.max_new_tokens)
    rows["one_at_a_time"] = (dt1, n1)
    # Batched runs are short: alternate with and without stop strings and keep each one's fastest,
    # so a burst of load on the machine does not decide the stop-string cost.
    runs: dict[bool, list] = {False: [], True: []}
    for _ in range(args.repeats):
        for with_stop in (False, True):
            runs[with_stop].append(timed(model, tok, ps, seq2seq, args.batch, args.max_new_tokens,
                                         stop=STOP if with_stop else ()))
    dtb, nb, textsb = min(runs[False], key=lambda r: r[0])
    dts, ns, _ = min(runs[True], key=lambda r: r[0])
    rows[f"batch_{args.batch}"] = (dtb, nb)
    rows[f"batch_{args.batch}_stop"] = (dts, ns)
    same = sum(a == b for a, b in zip(texts1, textsb))
    tps = {k: n / dt for k, (dt, n) in rows.items()}
    ratio = {k: round(v / tps["one_at_a_time"], 2) for k, v in tps.items()}
    # Stop strings are checked on the decoded tail of every row after every step: the cost is
    # the time per generated token with them over without.
    stop_cost = round((dts / max(1, ns)) / (dtb / max(1, nb)), 3)
    r = ratio[f"batch_{args.batch}"]
    bars = {f"batch {args.batch} >= 15x one at a time": harness.bar(r, 15, r >= 15)}
    harness.write_summary(args.out, {
        "tokens_per_s": {k: round(v, 1) for k, v in tps.items()}, "ratio_to_one_at_a_time": ratio,
        "stop_string_cost": stop_cost, "same_text_batched_and_alone": f"{same}/{len(ps)}", "bars": bars,
        "setup": {"student": args.student, "questions": len(ps), "max_new_tokens": args.max_new_tokens,
                  "threads": torch.get_num_threads(), "repeats": args.repeats,
                  "quick": args.quick}})
    print(f"{len(ps)} questions, {args.student}, up to {args.max_new_tokens} new tokens; "
          f"{same}/{len(ps)} answers identical batched and alone")
    harness.print_table(["mode", "tokens", "seconds", "tokens/s", "x one"],
                        [[k, n, f"{dt:.2f}", f"{tps[k]:.0f}", f"{ratio[k]:.2f}"] for k, (dt, n) in rows.items()])
    print(f"stop strings {STOP!r}: {stop_cost:.3f} x the time per token without them")
    harness.print_bars(bars)
    return 0


if __name__ == "__main__":
    sys.exit(main())
