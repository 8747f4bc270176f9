"""AS-ES learning against Fine-tune-CoT and direct training, equal budgets (same optimizer steps,
batch, learning rate and questions for every method), on math word problems with real rationales
(GSM8K human solutions; SVAMP with PaLM-540B rationales from Distilling step-by-step's release), on
Coin Flip with the released text-davinci-002 rationales (`coin_flip`, official split: a real-rationale
set the pretrained student does not sit at the floor of), and
a synthetic multi-step task whose rationales restate facts and compute (`word_problems` with
`restate: true`), with one student per run (`--student`: the MiniLM warm-started encoder-decoder by
default, `pretrained:smollm2-135m`, `pretrained:minilm-causal`, a preset from scratch, or a folder).

Reports accuracy (95% CI), generated tokens and seconds per question, the ES/AS shares of the
training rationales, and the validation loss per segment kind of the AS-ES students (the paper's
explanation is that abstractive steps are the hard part).

    python bench/as_es.py --out runs/as_es [--student pretrained:minilm-seq2seq --layers 3] [--data ../shared/data]
        [--steps 300] [--no-pack] [--quick]
    python bench/as_es.py --out runs/as_es_scratch --student preset:tiny

Prints the table, then the bars; writes OUT/summary.json = {"sets": {SET: {METHOD: {"accuracy", "ci95",
"mean_generated_tokens", "seconds_per_100", ...}}}, "segments": {SET: {"es_share", ...}},
"kind_loss": {SET: {METHOD: {"ES", "AS", "answer"}}} (the chosen checkpoint's validation loss per
kind, as training logged it), "kind_loss_curve": {SET: {METHOD: [{"step", "all", "ES", "AS",
"answer"}]}} (every evaluation), "bars": {"SET: as_es above ft_cot": {value, bar, met}}, "setup": ...}.
"""
from __future__ import annotations

import argparse
import sys
import time

import harness

METHODS = ["as_es", "as_es_dual", "ft_cot", "direct"]
SETS = {  # name: the task and teacher sections; the data folder is --data
    "gsm8k": {"task": {"source": "benchmark", "name": "gsm8k"}, "teacher": {"backend": "dataset"}},
    "svamp_palm": {"task": {"source": "benchmark", "name": "svamp_palm"}, "teacher": {"backend": "dataset"}},
    "word_problems": {"task": {"source": "synthetic", "name": "word_problems",
                               "params": {"n_steps": 3, "max_amount": 20, "restate": True}},
                      "teacher": {"backend": "exact"}},
    # not math: the released text-davinci-002 Zero-shot-CoT rationales (official split), on which the
    # pretrained student learns something, so the bar compares students that are off the floor
    "coin_flip": {"task": {"source": "benchmark", "name": "coin_flip"}, "teacher": {"backend": "replay"}},
}
REAL = ("gsm8k", "svamp_palm", "coin_flip")
KINDS = ("ES", "AS", "answer")


def set_config(args, name: str) -> dict:
    """The run config of one set, as data."""
    opts = {"level": args.level, **({"max_segments": 3} if args.quick else {})}
    task = {**SETS[name]["task"], "n_train": args.n_train, "n_test": args.n_test, "n_test_max": args.n_test,
            "sample": "random"}
    if task["source"] == "benchmark":
        task["data_dir"] = str(args.data)
    teacher = dict(SETS[name]["teacher"])
    if teacher["backend"] == "replay":
        teacher["path"] = str(args.data / "finetune-cot/teacher/text-davinci-002__zs_cot/D_coin_flip.json")
    train = {"max_steps": args.steps, "epochs": None, "batch_size": args.batch_size, "keep_checkpoints": False,
             "eval_every": max(2, args.steps // 5)}
    if harness.from_scratch(args.student):
        train.update(learning_rate=0.002, warmup_steps=50)
    return {"out": str(args.out / name), "task": task, "teacher": teacher,
            "student": harness.student_section(args.student, args.layers), "train": train,
            "eval": {"batch_size": 32, **({"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {})},
            "method_options": {"as_es": {**opts, "pack": args.pack}, "as_es_dual": opts}, "methods": args.methods}


def loss_curve(run, method: str) -> list[dict]:
    """The validation loss per target token of each kind at every evaluation of training (the
    `eval_loss_GROUP` rows of train_log.jsonl), with the whole validation loss beside it."""
    from cotdistill.io import read_jsonl_list

    path = run.folder.method(method).train_log
    rows = read_jsonl_list(path) if path.exists() else []
    return [{"step": r["step"], "all": round(r["eval_loss"], 4),
             **{k.removeprefix("eval_loss_"): v for k, v in r.items() if k.startswith("eval_loss_")}}
            for r in rows if "eval_loss" in r]


def kind_losses(run, method: str) -> dict:
    """The validation loss per kind of the checkpoint training kept (its best step), as training logged it."""
    from cotdistill.io import read_json

    best = read_json(run.folder.method(method).train_info).get("best_step")
    row = next((r for r in loss_curve(run, method) if r["step"] == best), {})
    return {k: row.get(k) for k in KINDS}


def paired_with_ft_cot(run, methods: list[str]) -> dict:
    """Each segmenting method minus ft_cot in accuracy points, paired by test question (both answer
    the same questions), with its 95% interval: issue 32's bar is as_es above ft_cot, and two
    overlapping Wilson intervals can hide a paired difference or fake one."""
    if "ft_cot" not in methods:  # a predictions file of an earlier run is not this run's ft_cot
        return {}
    return harness.paired_against({m: run.folder.method(m).predictions for m in ("as_es", "as_es_dual", "ft_cot")
                                   if m in methods}, "ft_cot")


def run_set(args, name: str) -> tuple[dict, dict, dict, dict]:
    from cotdistill.pipeline import Run
    from cotdistill.segments import label, split_segments, statistics

    run = Run(harness.config(set_config(args, name)))
    t0 = time.time()
    s = run.run_all()
    keep = ("accuracy", "ci95", "mean_generated_tokens", "seconds_per_100", "n", "steps", "train_pairs", "no_answer")
    rows = {m: {k: v for k, v in r.items() if k in keep} for m, r in s["methods"].items()}
    rows["_minutes"] = round((time.time() - t0) / 60, 1)
    rows["_paired_minus_ft_cot"] = paired_with_ft_cot(run, args.methods)
    curated = run.curated()
    segs = statistics([label(split_segments(r["rationale"], args.level), r["question"]) for r in curated])
    segmented = [m for m in ("as_es", "as_es_dual") if m in args.methods]
    return rows, segs, {m: kind_losses(run, m) for m in segmented}, {m: loss_curve(run, m) for m in segmented}


def check_bars(sets: dict) -> dict:
    """On each real-rationale set: as_es above ft_cot by more than the CI overlap, and (issue 32)
    as_es above ft_cot paired by question (the set's `_paired_minus_ft_cot`), its interval in the value."""
    out = {}
    for name in REAL:
        if name in sets and {"as_es", "ft_cot"} <= set(sets[name]):
            a, f = sets[name]["as_es"], sets[name]["ft_cot"]
            out[f"{name}: as_es CI low > ft_cot CI high"] = harness.bar(
                {"as_es": a["accuracy"], "ft_cot": f["accuracy"], "as_es_ci_low": a["ci95"][0]}, f["ci95"][1],
                a["ci95"][0] > f["ci95"][1])
            p = sets[name].get("_paired_minus_ft_cot", {}).get("as_es")
            if p:
                out[f"{name}: as_es minus ft_cot, paired"] = harness.bar(p, 0, p["difference"] > 0)
    return out


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "as_es", student="pretrained:minilm-seq2seq", data=True, steps=300, batch_size=16,
                        minilm_layers=True, quick="smoke run: 1 layer, 2 steps, a few questions")
    ap.add_argument("--n-train", type=int, default=800, help="training questions per set (random sample)")
    ap.add_argument("--n-test", type=int, default=200, help="test questions per set (random sample)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="per segment step (default: from the targets)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                    help="a subset (e.g. as_es ft_cot for the bar); a rerun with more reuses the trained ones")
    ap.add_argument("--level", choices=["sentence", "clause"], default="sentence",
                    help="segment level of as_es / as_es_dual (clause splits 'X flips the coin, so it is tails up')")
    ap.add_argument("--pack", action=argparse.BooleanOptionalAction, default=True,
                    help="as_es with a decoder-only student: one training row per rationale "
                         "(--no-pack: a row per step)")
    args = harness.parse(ap, argv)
    if args.quick:
        # batches of 4: a smoke run checks that every part runs, and the output layer over the
        # 30,522 word pieces dominates a 1-layer MiniLM's step
        args.steps, args.n_train, args.n_test, args.max_new_tokens, args.batch_size = 2, 24, 6, 12, 4
        args.layers = 1 if args.student.startswith("pretrained:") else None
    real = [s for s in args.sets if s in REAL]
    if real and not (args.data / "gsm8k").is_dir():
        print(f"no data for {real} under {args.data}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    t0 = time.time()
    summary: dict = {"sets": {}, "segments": {}, "kind_loss": {}, "kind_loss_curve": {}}
    for name in args.sets:
        rows, segs, losses, curves = run_set(args, name)
        summary["sets"][name], summary["segments"][name] = rows, segs
        summary["kind_loss"][name], summary["kind_loss_curve"][name] = losses, curves
        harness.write_summary(args.out, summary)  # a long run keeps what it did
    summary["bars"] = check_bars(summary["sets"])
    summary["setup"] = {"student": args.student, "layers": args.layers, "steps": args.steps,
                        "batch_size": args.batch_size, "n_train": args.n_train, "n_test": args.n_test,
                        "level": args.level, "pack": args.pack, "quick": args.quick}
    summary["minutes"] = round((time.time() - t0) / 60, 1)
    harness.write_summary(args.out, summary)
    print_table(summary, args)
    return 0


def print_table(summary: dict, args) -> None:
    print(f"\nSegments of the training rationales (overlap rule, {summary['setup']['level']} level)")
    for name, s in summary["segments"].items():
        print(f"  {name:14} {s['segments_per_rationale']:5.2f} per rationale, ES {100 * s['es_share']:5.1f}%, "
              f"AS {100 * s['as_share']:5.1f}%; ES {s['es_mean_words']:.1f} / AS {s['as_mean_words']:.1f} words")
    print("\nValidation loss per segment kind of the kept checkpoint (per token)")
    for name, ms in summary["kind_loss"].items():
        for m, ls in ms.items():
            print(f"  {name:14} {m:11} " + "  ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in ls.items()))
    print("\nValidation loss per segment kind during training (per token, pooled; all = the whole validation loss)")
    for name, ms in summary["kind_loss_curve"].items():
        for m, rows in ms.items():
            for r in rows:
                print(f"  {name:14} {m:11} step {r['step']:5} " + "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k != "step"))
    st = summary["setup"]
    layers = f" ({st['layers']} layers)" if st["layers"] else ""
    print(f"\nAS-ES vs ft_cot vs direct, {st['student']}{layers}, equal budgets ({st['steps']} steps, batch "
          f"{st['batch_size']}), {summary['minutes']} min -> {args.out / 'summary.json'}")
    print(f"{'set':14} {'method':11} {'accuracy':>8} {'95% CI':>13} {'gen. tokens':>11} {'s/100 q':>8}")
    for name, ms in summary["sets"].items():
        for m, r in ms.items():
            if not m.startswith("_"):
                print(f"{name:14} {m:11} {r['accuracy']:8.2f} {r['ci95'][0]:6.1f}-{r['ci95'][1]:<6.1f} "
                      f"{r['mean_generated_tokens']:11.1f} {r['seconds_per_100']:8.2f}")
    harness.print_bars(summary["bars"])


if __name__ == "__main__":
    sys.exit(main())
