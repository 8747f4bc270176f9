"""Answer-first students: pre-thinking (`ft_cot`), `post`, `adaptive`, `step_by_step` and `direct`,
from-scratch students with equal budgets (same preset, optimizer steps, batch, learning rate and
questions), on synthetic tasks of different difficulty, a mixed set of them, and the released
text-davinci-002 Zero-shot-CoT rationales for coin_flip, last_letter_concatenation and multiarith.

Prints, last, one table: accuracy (95% CI), mean generated tokens per question and seconds per
100 questions per set and method, plus adaptive's share of questions routed to post. Writes
OUT/summary.json = {"sets": {SET: {METHOD: {"accuracy", "ci95", "mean_generated_tokens",
"seconds_per_100", "post_fraction" (adaptive)}}}, "adaptive_forced": ..., "bars": ...}.

    python bench/answer_first.py --out runs/answer_first [--data ../shared/data] [--jobs 2] [--quick]

Sets run in parallel worker processes (`--jobs`), one torch thread each; timings are therefore
taken under the same load for every method of a set, and compare within a set.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from finetune_cot_replay import teacher_file

METHODS = ["ft_cot", "post", "adaptive", "step_by_step", "direct"]
ARITH = {"ops": "+", "max_operand": 50}
SYNTHETIC = {  # set name: (task params or mixed parts, optimizer steps)
    "last_letters": ({"name": "last_letters", "params": {"n_words": 3}}, 800),
    "arithmetic_2": ({"name": "arithmetic", "params": {"n_ops": 2, **ARITH}}, 1000),
    "arithmetic_4": ({"name": "arithmetic", "params": {"n_ops": 4, **ARITH}}, 2000),
}
MIXED_STEPS = 3000
REAL = ["coin_flip", "last_letter_concatenation", "multiarith"]
REAL_STEPS = 400  # long free-form rationales make these steps ~3x slower; the students stay weak (README)


def set_overrides(name: str, args) -> list[str]:
    quick = args.quick
    # A smoke run's students have not learnt to stop: cap generation so it stays a smoke run.
    common = [*(["eval.max_new_tokens=24"] if quick else []), "student.model=preset:tiny", "train.batch_size=32", "train.learning_rate=0.002", "train.warmup_steps=100",
              "train.threads=1", "eval.batch_size=250", f"methods=[{', '.join(METHODS)}]", "train.seed=0"]
    if name in REAL:
        teacher = teacher_file(Path(args.data), name)
        steps = 20 if quick else REAL_STEPS
        return [*common, "task.source=benchmark", f"task.name={name}", f"task.data_dir={args.data}",
                f"task.n_train={100 if quick else 0}",
                "teacher.backend=replay", f"teacher.path={teacher}", f"train.max_steps={steps}",
                f"train.eval_every={max(10, steps // 5)}"]
    if name == "mixed":
        parts = [spec for spec, _ in SYNTHETIC.values()]
        task = ["task.name=mixed", f"task.params={json.dumps({'parts': parts})}"]
        steps, n_train, n_test = MIXED_STEPS, 6000, 600
    else:
        spec, steps = SYNTHETIC[name]
        task = [f"task.name={spec['name']}", f"task.params={json.dumps(spec['params'])}"]
        n_train, n_test = 3000, 500
    if quick:
        steps, n_train, n_test = 20, 120, 30
    return [*common, "task.source=synthetic", *task, f"task.n_train={n_train}", f"task.n_test={n_test}",
            "teacher.backend=exact", f"train.max_steps={steps}", f"train.eval_every={max(10, steps // 5)}"]


def forced_modes(run, test) -> dict:
    """The adaptive student with its route forced to one mode, and the oracle router (either mode
    right): how much of its potential the perception module realises."""
    from cotdistill.evaluate import predict, summarize
    from cotdistill.methods import get_method
    from cotdistill.students import load_student

    model, tok, seq2seq = load_student(str(run.out / "adaptive" / "model"))
    out, correct = {}, {}
    for mode in ("pre", "post"):
        preds = predict(get_method("adaptive", {"mode": mode}), model, tok, seq2seq, test,
                        max_new_tokens=run.eval_max_new_tokens("adaptive"), batch_size=run.cfg.eval.batch_size)
        s = summarize(preds)
        out[mode] = {k: s[k] for k in ("accuracy", "mean_generated_tokens", "seconds_per_100")}
        correct[mode] = [p["correct"] for p in preds]
    out["oracle_accuracy"] = round(100 * sum(a or b for a, b in zip(correct["pre"], correct["post"])) / len(test), 2)
    return out


def by_part(run) -> dict:
    """Mixed set: accuracy and route per part (which task each question came from)."""
    test = {r["id"]: r["metadata"].get("part") for r in map(json.loads, (run.out / "data/test.jsonl").open())}
    out: dict = {}
    for m in METHODS:
        preds = [json.loads(l) for l in (run.out / m / "predictions.jsonl").open()]
        for part in sorted(set(test.values())):
            sel = [p for p in preds if test[p["id"]] == part]
            row = out.setdefault(str(part), {}).setdefault(m, {})
            row["accuracy"] = round(100 * sum(p["correct"] for p in sel) / len(sel), 2)
            row["mean_generated_tokens"] = round(sum(p["generated_tokens"] for p in sel) / len(sel), 2)
            if m == "adaptive":
                row["post_fraction"] = round(sum(p["mode"] == "post" for p in sel) / len(sel), 4)
    return out


def run_set(name: str, args) -> dict:
    import torch

    from cotdistill.config import load_config
    from cotdistill.pipeline import Run

    torch.set_num_threads(1)
    t0 = time.time()
    run = Run(load_config(None, [f"out={Path(args.out) / name}", *set_overrides(name, args)]))
    s = run.run_all()
    _, test = run.data()
    res = {"summary": s, "adaptive_forced": forced_modes(run, test),
           "routing": json.loads((run.out / "adaptive/train_info.json").read_text()).get("routing")}
    if name == "mixed":
        res["by_part"] = by_part(run)
    res["seconds"] = round(time.time() - t0, 1)
    return res


def check_bars(sets: dict) -> dict:
    bars: dict = {"post_tokens_at_most_half_of_ft_cot": {}}
    for name, ms in sets.items():
        ratio = ms["post"]["mean_generated_tokens"] / max(1e-9, ms["ft_cot"]["mean_generated_tokens"])
        bars["post_tokens_at_most_half_of_ft_cot"][name] = {"ratio": round(ratio, 3), "met": ratio <= 0.5}
    if "mixed" in sets:
        m = sets["mixed"]
        f = m["adaptive"]["post_fraction"]
        best = max(m["ft_cot"]["accuracy"], m["post"]["accuracy"])
        bars["mixed_routes_both_ways"] = {"post_fraction": f, "met": 0.1 <= f <= 0.9}
        bars["mixed_adaptive_within_1_point_of_best"] = {
            "adaptive": m["adaptive"]["accuracy"], "max_ft_cot_post": best,
            "met": m["adaptive"]["accuracy"] >= best - 1.0}
    return bars


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/answer_first"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--jobs", type=int, default=2, help="sets trained at once (one torch thread each)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 steps, a few questions")
    ap.add_argument("--sets", nargs="*", help="only these sets")
    args = ap.parse_args(argv)
    names = [*SYNTHETIC, "mixed"]
    if teacher_file(args.data, "coin_flip").exists():
        names += REAL
    else:
        print(f"no teacher files under {args.data}: real-data sets skipped", file=sys.stderr)
    if args.sets:
        unknown = set(args.sets) - set(names)
        if unknown:
            print(f"unknown or unavailable sets: {sorted(unknown)} (have {names})", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.sets]
    t0 = time.time()
    # Longest sets first, so the pool's last job is a short one.
    order = sorted(names, key=lambda n: -(MIXED_STEPS if n == "mixed" else SYNTHETIC.get(n, (None, REAL_STEPS))[1]))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {n: pool.submit(run_set, n, args) for n in order}
        results = {n: futs[n].result() for n in names}
    keys = ("accuracy", "ci95", "mean_generated_tokens", "seconds_per_100", "post_fraction", "by_mode")
    sets = {n: {m: {k: v for k, v in r["summary"]["methods"][m].items() if k in keys} for m in METHODS}
            for n, r in results.items()}
    summary = {
        "sets": sets, "bars": check_bars(sets),
        "adaptive_forced": {n: r["adaptive_forced"] for n, r in results.items()},
        "routing": {n: r["routing"] for n, r in results.items()},
        "mixed_by_part": results.get("mixed", {}).get("by_part"),
        "setup": {n: {"n_train": r["summary"]["n_train"], "n_test": r["summary"]["n_test"],
                      "steps": r["summary"]["methods"]["ft_cot"]["steps"], "seconds": r["seconds"]}
                  for n, r in results.items()},
        "student": "preset:tiny (from scratch)", "quick": args.quick, "seconds": round(time.time() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))

    print("\nAdaptive student with its route forced (test set): pre / post / oracle accuracy, routed accuracy")
    for n, f in summary["adaptive_forced"].items():
        print(f"  {n:26} pre {f['pre']['accuracy']:6.2f}  post {f['post']['accuracy']:6.2f}  "
              f"oracle {f['oracle_accuracy']:6.2f}  routed {sets[n]['adaptive']['accuracy']:6.2f}")
    print("\nBars")
    for bar, v in summary["bars"].items():
        print(f"  {bar}: {json.dumps(v)}")
    print(f"\nAnswer-first students, from scratch, equal budgets ({summary['seconds']:.0f} s) -> {args.out / 'summary.json'}")
    print(f"{'set':26} {'method':13} {'accuracy':>8} {'95% CI':>13} {'gen. tokens':>11} {'s/100 q':>8} {'post %':>7}")
    for n, ms in sets.items():
        for m, r in ms.items():
            post = f"{100 * r['post_fraction']:.1f}" if "post_fraction" in r else "-"
            ci = f"{r['ci95'][0]:.1f}-{r['ci95'][1]:.1f}"
            print(f"{n:26} {m:13} {r['accuracy']:8.2f} {ci:>13} {r['mean_generated_tokens']:11.1f} "
                  f"{r['seconds_per_100']:8.3f} {post:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
