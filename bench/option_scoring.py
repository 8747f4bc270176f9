"""Option scoring speed: a decoder-only student scores every answer option of a multiple-choice
question (how `cot_tuning` answers unseen tasks) by reading each question's context once and
its options from the cache (`cotdistill.hf.continuation_logprob`), against reading the whole
sequence again per option (how it did before), with the same student and questions in one run.

Questions come from a BIG-bench task (`--task`, default date_understanding: 6 options); the
context is `cot_tuning`'s prompt (what the direct twin scores after; a CoT-tuned student's own
rationale would only lengthen it). Reported: seconds per question for each way, their ratio,
and how far apart the scores are (they must agree: the same numbers, a different order of work).

    python bench/option_scoring.py --student pretrained:smollm2-135m --data ../shared/data --out runs/option_scoring

Prints the table last; writes OUT/summary.json = {"seconds_per_question": {...}, "speedup": ...,
"max_abs_difference": ..., "same_best_option": "k/n", "bars": {...}, "setup": {...}}.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from cotdistill.hf import continuation_logprob
from cotdistill.methods import get_method
from cotdistill.students import load_student

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)


def questions(args) -> list[tuple[str, list[str]]]:
    """(context, options) per question."""
    if args.quick:
        return [(f"Q{i}: which word names a colour?\n\n", ["red", "table", "running fast", "seven"]) for i in range(6)]
    from cotdistill.tasks.bigbench import load_bigbench

    m = get_method("cot_tuning_direct")
    exs = [e for e in load_bigbench(args.data / "bigbench" / args.task) if e.choices][:args.questions]
    return [(m.source(e, False), [f"[ANSWER] {c}" for c in e.choices]) for e in exs]


def whole_sequences(model, tok, sources, continuations, batch_size) -> list[float]:
    """The reference: every (context, option) row read in full, right-padded in batches."""
    out = []
    for s in range(0, len(sources), batch_size):
        rows = [(tok(a, add_special_tokens=False)["input_ids"], tok(b, add_special_tokens=False)["input_ids"])
                for a, b in zip(sources[s:s + batch_size], continuations[s:s + batch_size])]
        seqs = [a + b for a, b in rows]
        n = max(map(len, seqs))
        ids = torch.full((len(seqs), n), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, x in enumerate(seqs):
            ids[i, :len(x)], att[i, :len(x)] = torch.tensor(x), 1
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), -1)
        for i, (a, b) in enumerate(rows):
            pos = torch.arange(len(a) - 1, len(a) - 1 + len(b))
            out.append(float(logp[i, pos, torch.tensor(b)].mean()))
    return out


def best(scores: list[float], counts: list[int]) -> list[int]:
    picks, at = [], 0
    for k in counts:
        q = scores[at:at + k]
        picks.append(q.index(max(q)))
        at += k
    return picks


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "option_scoring", student="pretrained:smollm2-135m", data=True, batch_size=32,
                        quick="smoke run: tiny student, 6 made-up questions")
    ap.add_argument("--task", default="date_understanding", help="a BIG-bench task under DATA/bigbench")
    ap.add_argument("--questions", type=int, default=48)
    args = harness.parse(ap, argv)
    if args.quick:
        args.student = "preset:tiny"
    elif not (args.data / "bigbench" / args.task).exists():
        print(f"missing data: {args.data / 'bigbench' / args.task}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    model, tok, seq2seq = load_student(args.student, seed=0)
    if seq2seq:
        print("option_scoring measures decoder-only students; this one is an encoder-decoder", file=sys.stderr)
        return 2
    model.eval()
    qs = questions(args)
    sources = [c for c, opts in qs for _ in opts]
    conts = [o for _, opts in qs for o in opts]
    counts = [len(opts) for _, opts in qs]
    continuation_logprob(model, tok, False, sources[:2], [""] * 2, conts[:2])  # warm-up allocations
    t0 = time.perf_counter()
    ref = whole_sequences(model, tok, sources, conts, args.batch_size)
    t1 = time.perf_counter()
    shared = continuation_logprob(model, tok, False, sources, [""] * len(sources), conts, batch_size=args.batch_size)
    t2 = time.perf_counter()
    per_q = {"whole_sequences": (t1 - t0) / len(qs), "shared_context": (t2 - t1) / len(qs)}
    speedup = round(per_q["whole_sequences"] / per_q["shared_context"], 2)
    diff = max(abs(a - b) for a, b in zip(ref, shared))
    same = sum(a == b for a, b in zip(best(ref, counts), best(shared, counts)))
    bars = {"scores agree within 1e-3": harness.bar(round(diff, 6), 1e-3, diff <= 1e-3),
            "same best option on every question": harness.bar(f"{same}/{len(qs)}", f"{len(qs)}/{len(qs)}", same == len(qs))}
    harness.write_summary(args.out, {
        "seconds_per_question": {k: round(v, 4) for k, v in per_q.items()}, "speedup": speedup,
        "max_abs_difference": round(diff, 6), "same_best_option": f"{same}/{len(qs)}", "bars": bars,
        "setup": {"student": args.student, "task": None if args.quick else args.task, "questions": len(qs),
                  "options": sum(counts), "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                  "quick": args.quick}})
    print(f"{len(qs)} questions, {sum(counts)} options, {args.student}")
    harness.print_table(["way", "s / question", "x whole sequences"],
                        [[k, f"{v:.3f}", f"{per_q['whole_sequences'] / v:.2f}"] for k, v in per_q.items()])
    harness.print_bars(bars)
    return 0


if __name__ == "__main__":
    sys.exit(main())
