"""AS-ES learning against Fine-tune-CoT and direct training, equal budgets (same optimizer steps,
batch, learning rate and questions for every method), on math word problems with real rationales
(GSM8K human solutions; SVAMP with PaLM-540B rationales from Distilling step-by-step's release), on
Coin Flip with the released text-davinci-002 rationales (`coin_flip`, official split: a real-rationale
set the pretrained student does not sit at the floor of), and
a synthetic multi-step task whose rationales restate facts and compute (`word_problems` with
`restate: true`), with the pretrained seq2seq student (MiniLM warm-started encoder-decoder) and a
from-scratch preset.

Reports accuracy (95% CI), generated tokens and seconds per question, the ES/AS shares of the
training rationales, and the validation loss per segment kind of the AS-ES students (the paper's
explanation is that abstractive steps are the hard part).

    python bench/as_es.py --out runs/as_es [--data ../shared/data] [--layers 3] [--steps 300] [--no-pack] [--quick]

Prints the table last; writes OUT/summary.json = {"sets": {SET: {METHOD: {"accuracy", "ci95",
"mean_generated_tokens", "seconds_per_100", ...}}} (pretrained encoder-decoder), "sets_causal"
(`--students causal`: MiniLM as a decoder), "sets_scratch" (from scratch), "segments": {SET:
{"es_share", ...}}, "kind_loss[_causal|_scratch]": {SET: {METHOD: {"ES", "AS", "answer"}}} (the trained student),
"kind_loss[...]_curve": {SET: {"as_es": [{"step", "all", "ES", "AS", "answer"}]}} (every evaluation),
"bars": {STUDENT: {SET: ...}}, "setup": ...}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

METHODS = ["as_es", "as_es_dual", "ft_cot", "direct"]
SETS = {  # name: task overrides (teacher included); {data} is --data
    "gsm8k": ["task.source=benchmark", "task.name=gsm8k", "teacher.backend=dataset"],
    "svamp_palm": ["task.source=benchmark", "task.name=svamp_palm", "teacher.backend=dataset"],
    "word_problems": ["task.source=synthetic", "task.name=word_problems",
                      'task.params={"n_steps": 3, "max_amount": 20, "restate": true}', "teacher.backend=exact"],
    # not math: the released text-davinci-002 Zero-shot-CoT rationales (official split), on which the
    # pretrained student learns something, so the bar compares students that are off the floor
    "coin_flip": ["task.source=benchmark", "task.name=coin_flip", "teacher.backend=replay",
                  "teacher.path={data}/finetune-cot/teacher/text-davinci-002__zs_cot/D_coin_flip.json"],
}
REAL = ("gsm8k", "svamp_palm", "coin_flip")
STUDENTS = {"pretrained": "pretrained:minilm-seq2seq", "causal": "pretrained:minilm-causal", "scratch": "preset:tiny"}
SETS_KEY = {"pretrained": "sets", "causal": "sets_causal", "scratch": "sets_scratch"}  # summary.json keys
LOSS_KEY = {"pretrained": "kind_loss", "causal": "kind_loss_causal", "scratch": "kind_loss_scratch"}


def overrides(args, name: str, student: str) -> list[str]:
    pretrained = student.startswith("pretrained:")
    train = (["train.recipe=pretrained", *([f"student.layers={args.layers}"] if args.layers else [])] if pretrained
             else ["train.learning_rate=0.002", "train.warmup_steps=50"])
    n_test = args.n_test
    opts = {"level": args.level, **({"max_segments": 3} if args.quick else {})}
    per_method = {"as_es": {**opts, "pack": args.pack}, "as_es_dual": opts}
    who = next(w for w, m in STUDENTS.items() if m == student)
    return [f"out={args.out / who / name}", *(o.replace("{data}", str(args.data)) for o in SETS[name]),
            f"task.data_dir={args.data}", f"task.n_train={args.n_train}", f"task.n_test={n_test}",
            f"task.n_test_max={n_test}", "task.sample=random", f"student.model={student}", *train,
            f"train.max_steps={args.steps}", "train.epochs=null", f"train.batch_size={args.batch_size}", "train.keep_checkpoints=false",
            f"train.eval_every={max(2, args.steps // 5)}", "eval.batch_size=32",
            *([f"eval.max_new_tokens={args.max_new_tokens}"] if args.max_new_tokens else []),
            f"method_options={json.dumps(per_method)}",
            f"methods=[{', '.join(args.methods)}]"]


def kind_losses(run, method: str) -> dict:
    """Mean per-token validation loss of the trained AS-ES student, per kind of target."""
    import torch

    from cotdistill.methods import get_method
    from cotdistill.students.data import Collator, encode_pairs

    m = get_method(method, run.cfg.method_options.get(method))
    train, _ = run.data()
    _, val = run.split_val(train)
    curated = run.curated()
    by_q: dict = {}
    for r in curated:
        by_q.setdefault(r["id"], []).append(r["rationale"])
    model, tok, seq2seq = run.load_trained(run.folder.model(method))
    m = m.load_extras(run.folder.model(method), model)
    groups: dict = {"ES": [], "AS": [], "answer": []}
    for ex in val:
        rs = by_q.get(ex.id, [])
        if method == "as_es_dual":
            for kind, p in m.turns(ex, rs, seq2seq):
                groups["answer" if "-->" in p.target else kind].append((m.student_for(kind, model), p))
        else:
            for key, p in m.loss_groups(ex, rs, seq2seq):
                groups[key].append((model, p))
    out = {}
    for key, items in groups.items():
        losses = []
        for student, p in items:
            feats, _ = encode_pairs([p], tok, seq2seq, 512)
            if not feats:
                continue
            b = Collator(tok.pad_token_id)(feats)
            b.pop("weights")
            with torch.no_grad():
                losses.append(float(student(**{k: v.to(student.device) for k, v in b.items()}).loss))
        out[key] = round(sum(losses) / len(losses), 4) if losses else None
    return out


def loss_curve(run, method: str) -> list[dict]:
    """The validation loss per target token of each kind at every evaluation of training (the
    `eval_loss_GROUP` rows of train_log.jsonl), with the whole validation loss beside it."""
    from cotdistill.io import read_jsonl_list

    path = run.folder.method(method).train_log
    rows = read_jsonl_list(path) if path.exists() else []
    return [{"step": r["step"], "all": round(r["eval_loss"], 4),
             **{k.removeprefix("eval_loss_"): v for k, v in r.items() if k.startswith("eval_loss_")}}
            for r in rows if "eval_loss" in r]


def run_set(args, name: str, student: str) -> tuple[dict, dict, dict, dict]:
    from cotdistill.config import load_config
    from cotdistill.pipeline import Run
    from cotdistill.segments import label, split_segments, statistics

    run = Run(load_config(None, overrides(args, name, student)))
    t0 = time.time()
    s = run.run_all()
    keep = ("accuracy", "ci95", "mean_generated_tokens", "seconds_per_100", "n", "steps", "train_pairs", "no_answer")
    rows = {m: {k: v for k, v in r.items() if k in keep} for m, r in s["methods"].items()}
    rows["_minutes"] = round((time.time() - t0) / 60, 1)
    curated = run.curated()
    segs = statistics([label(split_segments(r["rationale"], args.level), r["question"]) for r in curated])
    losses = {m: kind_losses(run, m) for m in ("as_es", "as_es_dual") if m in args.methods}
    curves = {m: loss_curve(run, m) for m in ("as_es",) if m in args.methods}  # as_es_dual owns its training
    return rows, segs, losses, curves


def check_bars(sets: dict) -> dict:
    """as_es above ft_cot by more than the CI overlap on a real-rationale set (pretrained student)."""
    out = {}
    for name in REAL:
        if name in sets and {"as_es", "ft_cot"} <= set(sets[name]):
            a, f = sets[name]["as_es"], sets[name]["ft_cot"]
            out[name] = {"as_es": a["accuracy"], "ft_cot": f["accuracy"], "as_es_ci_low": a["ci95"][0],
                         "ft_cot_ci_high": f["ci95"][1], "met": a["ci95"][0] > f["ci95"][1]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--out", type=Path, default=Path("runs/as_es"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--layers", type=int, default=3, help="pretrained student: layers of MiniLM kept")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps for every method")
    ap.add_argument("--batch-size", type=int, default=16, help="training batch of every method")
    ap.add_argument("--n-train", type=int, default=800, help="training questions per set (random sample)")
    ap.add_argument("--n-test", type=int, default=200, help="test questions per set (random sample)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="per segment step (default: from the targets)")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--students", nargs="+", default=["pretrained", "scratch"], choices=list(STUDENTS),
                    help="pretrained: MiniLM encoder-decoder; causal: MiniLM as a decoder; scratch: preset:tiny")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                    help="a subset (e.g. as_es ft_cot for the bar); a rerun with more reuses the trained ones")
    ap.add_argument("--level", choices=["sentence", "clause"], default="sentence",
                    help="segment level of as_es / as_es_dual (clause splits 'X flips the coin, so it is tails up')")
    ap.add_argument("--pack", action=argparse.BooleanOptionalAction, default=True,
                    help="as_es with a decoder-only student: one training row per rationale "
                         "(--no-pack: a row per step)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 layer, 2 steps, a few questions")
    args = ap.parse_args(argv)
    if args.quick:
        # batches of 4: a smoke run checks that every part runs, and the output layer over the
        # 30,522 word pieces dominates a 1-layer MiniLM's step
        args.layers, args.steps, args.n_train, args.n_test, args.max_new_tokens, args.batch_size = 1, 2, 24, 6, 12, 4
    real = [s for s in args.sets if s in REAL]
    if real and not (args.data / "gsm8k").is_dir():
        print(f"no data for {real} under {args.data}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    t0 = time.time()
    summary: dict = {**{SETS_KEY[w]: {} for w in args.students}, "segments": {},
                     **{LOSS_KEY[w]: {} for w in args.students}, **{f"{LOSS_KEY[w]}_curve": {} for w in args.students}}
    for who in args.students:
        for name in args.sets:
            rows, segs, losses, curves = run_set(args, name, STUDENTS[who])
            summary[SETS_KEY[who]][name] = rows
            summary["segments"][name] = segs
            summary[LOSS_KEY[who]][name] = losses
            summary[f"{LOSS_KEY[who]}_curve"][name] = curves
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "summary.json").write_text(json.dumps(summary, indent=2))  # a long run keeps what it did
    summary["bars"] = {w: check_bars({k: {m: v for m, v in r.items() if not m.startswith("_")}
                                      for k, r in summary[SETS_KEY[w]].items()})
                       for w in args.students if w != "scratch"}
    summary["setup"] = {"steps": args.steps, "batch_size": args.batch_size, "layers": args.layers, "n_train": args.n_train,
                        "n_test": args.n_test, "level": args.level, "pack": args.pack,
                        "students": {w: STUDENTS[w] for w in args.students}, "quick": args.quick}
    summary["minutes"] = round((time.time() - t0) / 60, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(summary, args)
    return 0


def print_table(summary: dict, args) -> None:
    print(f"\nSegments of the training rationales (overlap rule, {summary['setup']['level']} level)")
    for name, s in summary["segments"].items():
        print(f"  {name:14} {s['segments_per_rationale']:5.2f} per rationale, ES {100 * s['es_share']:5.1f}%, "
              f"AS {100 * s['as_share']:5.1f}%; ES {s['es_mean_words']:.1f} / AS {s['as_mean_words']:.1f} words")
    print("\nValidation loss per segment kind (per token)")
    for who, key in LOSS_KEY.items():
        for name, ms in summary.get(key, {}).items():
            for m, ls in ms.items():
                print(f"  {who:10} "
                      f"{name:14} {m:11} " + "  ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in ls.items()))
    print("\nValidation loss per segment kind during training (per token, pooled; all = the whole validation loss)")
    for who, key in LOSS_KEY.items():
        for name, ms in summary.get(f"{key}_curve", {}).items():
            for m, rows in ms.items():
                for r in rows:
                    print(f"  {who:10} {name:14} {m:11} step {r['step']:5} "
                          + "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k != "step"))
    print("\nBars")
    for k, v in summary["bars"].items():
        print(f"  {k}: {json.dumps(v)}")
    print(f"\nAS-ES vs ft_cot vs direct, equal budgets ({summary['setup']['steps']} steps, batch {summary['setup']['batch_size']}), "
          f"{summary['minutes']} min -> {args.out / 'summary.json'}")
    print(f"{'student':10} {'set':14} {'method':11} {'accuracy':>8} {'95% CI':>13} {'gen. tokens':>11} {'s/100 q':>8}")
    for who, key in SETS_KEY.items():
        for name, ms in summary.get(key, {}).items():
            for m, r in ms.items():
                if m.startswith("_"):
                    continue
                print(f"{who:10} {name:14} {m:11} {r['accuracy']:8.2f} {r['ci95'][0]:6.1f}-{r['ci95'][1]:<6.1f} "
                      f"{r['mean_generated_tokens']:11.1f} {r['seconds_per_100']:8.2f}")


if __name__ == "__main__":
    sys.exit(main())
