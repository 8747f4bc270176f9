"""Answer-first students: pre-thinking (`ft_cot`), `post`, `adaptive`, `step_by_step` and `direct`,
from-scratch students with equal budgets (same preset, optimizer steps, batch, learning rate and
questions), on synthetic tasks of different difficulty, a mixed set of them, and the released
text-davinci-002 Zero-shot-CoT rationales for coin_flip, last_letter_concatenation and multiarith.

Prints, last, one table: accuracy (95% CI), mean generated tokens per question and seconds per
100 questions per set and method, plus adaptive's share of questions routed to post. Writes
OUT/summary.json = {"sets": {SET: {METHOD: {"accuracy", "ci95", "mean_generated_tokens",
"seconds_per_100", "post_fraction" (adaptive)}}}, "adaptive_forced": ..., "bars": ...}.

    python bench/answer_first.py --out runs/answer_first [--data ../shared/data] [--jobs 2] [--seeds 1] [--quick]
    python bench/answer_first.py --out runs/answer_first_minilm --student pretrained:minilm-seq2seq --layers 3

`--student pretrained:NAME` trains a pretrained student instead (real-data sets only), by the
`pretrained` recipe (learning rate 1e-4, 20 warm-up steps, batch 16) with the same number of
optimizer steps for every method (`--steps`, default 100: about 5.5 epochs of the 287 Coin Flip
rationales; adaptive and step_by_step see two pairs per question, so fewer passes).

`--seeds N` repeats every set with N seeds (task data, initialisation and split); a set's figures
are then pooled over the seeds (accuracy = mean of the seeds', CI over all N x n_test answers) and
each seed's accuracy is listed. Each (set, seed, method) trains in its own worker process
(`--jobs` at once, one torch thread each, on the GPU when there is one): timings are taken under
the same load for every method, and compare within one run of this script.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import multiprocessing as mp
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
MIXED_STEPS = 6000  # 3,000 sat on the jump of the additions' curve: 91-98% for ft_cot by seed
MIXED_N_TRAIN = 12000
REAL = ["coin_flip", "last_letter_concatenation", "multiarith"]
REAL_STEPS = 400  # long free-form rationales make these steps ~3x slower; the students stay weak (README)
PRETRAINED_STEPS = 100  # a 3+3-layer MiniLM encoder-decoder step takes 2-4 s on one thread


def set_overrides(name: str, seed: int, args) -> list[str]:
    quick = args.quick
    if pretrained(args):  # the pretrained recipe's optimizer settings, equal steps for every method
        student = [f"student.model={args.student}", *([f"student.layers={args.layers}"] if args.layers else []),
                   "train.recipe=pretrained", "eval.batch_size=32",
                   # a smoke run checks that every part runs; at batch 4 its steps cost a third
                   *(["train.batch_size=4"] if quick else [])]
    else:
        student = [f"student.model={args.student}", "train.batch_size=32", "train.learning_rate=0.002",
                   "train.warmup_steps=100", "eval.batch_size=250"]
    # A smoke run's students have not learnt to stop: cap generation so it stays a smoke run; its
    # perception module needs only to train and route, not to converge.
    common = [*(["eval.max_new_tokens=24", "method_options.adaptive.perception_steps=20"] if quick else []),
              *student, "train.threads=1", "train.keep_checkpoints=false",
              f"methods=[{', '.join(METHODS)}]", f"train.seed={seed}"]
    if name in REAL:
        teacher = teacher_file(Path(args.data), name)
        steps = args.steps or (2 if quick and pretrained(args) else 20 if quick else steps_of(name, args))
        return [*common, "task.source=benchmark", f"task.name={name}", f"task.data_dir={args.data}",
                f"task.n_train={100 if quick else 0}", *(["task.n_test_max=30", "task.sample=random"] if quick else []),
                "teacher.backend=replay", f"teacher.path={teacher}", f"train.max_steps={steps}",
                f"train.eval_every={max(10, steps // 5)}"]
    if name == "mixed":
        parts = [spec for spec, _ in SYNTHETIC.values()]
        task = ["task.name=mixed", f"task.params={json.dumps({'parts': parts})}"]
        steps, n_train, n_test = MIXED_STEPS, MIXED_N_TRAIN, 600
    else:
        spec, steps = SYNTHETIC[name]
        task = [f"task.name={spec['name']}", f"task.params={json.dumps(spec['params'])}"]
        n_train, n_test = 3000, 500
    if quick:
        steps, n_train, n_test = 20, 120, 30
    steps = args.steps or steps
    return [*common, "task.source=synthetic", *task, f"task.n_train={n_train}", f"task.n_test={n_test}",
            f"task.seed={seed}", "teacher.backend=exact", f"train.max_steps={steps}", f"train.eval_every={max(10, steps // 5)}"]


def make_run(name: str, seed: int, args):
    from cotdistill.config import load_config
    from cotdistill.pipeline import Run

    return Run(load_config(None, [f"out={Path(args.out) / name / f'seed{seed}'}", *set_overrides(name, seed, args)]))


def forced_modes(run, test) -> dict:
    """The adaptive student with its route forced to one mode, and the oracle router (either mode
    right): how much of its potential the perception module realises."""
    from cotdistill.evaluate import predict, summarize
    from cotdistill.methods import get_method

    model, tok, seq2seq = run.load_trained(run.folder.model("adaptive"))
    out, correct = {}, {}
    for mode in ("pre", "post"):
        preds = predict(get_method("adaptive", {"mode": mode}), model, tok, seq2seq, test,
                        max_new_tokens=run.eval_max_new_tokens("adaptive"), batch_size=run.cfg.eval.batch_size)
        s = summarize(preds)
        out[mode] = {k: s[k] for k in ("accuracy", "mean_generated_tokens", "seconds_per_100")}
        correct[mode] = [p["correct"] for p in preds]
    out["oracle_accuracy"] = round(100 * sum(a or b for a, b in zip(correct["pre"], correct["post"])) / len(test), 2)
    return out


def by_part(seed_runs: list[tuple[list, dict[str, list[dict]]]]) -> dict:
    """Mixed set: accuracy and route per part (which task each question came from), pooled over the
    seeds' (test questions, {method: predictions})."""
    from cotdistill.evaluate import score
    from cotdistill.methods import get_method

    out: dict = {}
    for m in METHODS:
        sel: dict[str, list[dict]] = {}
        for test, preds in seed_runs:
            part = {e.id: str(e.metadata.get("part")) for e in test}
            for p in preds[m]:
                sel.setdefault(part[p["id"]], []).append(p)
        for pt, ps in sorted(sel.items()):
            s = score(get_method(m), ps)
            out.setdefault(pt, {})[m] = {k: s[k] for k in ("accuracy", "mean_generated_tokens", "post_fraction") if k in s}
    return out


def prepare(name: str, seed: int, args) -> None:
    """Data, teacher rationales and curation, written once before any method trains on them."""
    make_run(name, seed, args).prepare()


def train_eval(name: str, seed: int, method: str, args) -> dict:
    """One method of one (set, seed): train, evaluate, and for adaptive its forced-route figures."""
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    run = make_run(name, seed, args)
    train, test = run.data()  # read back: prepare() wrote them
    curated = run.curated()
    row, preds = run.run_method(method, train, test, curated)
    res = {"row": row, "preds": preds}
    if method == "adaptive":
        res["forced"] = forced_modes(run, test)
        res["routing"] = json.loads(run.folder.method("adaptive").train_info.read_text()).get("routing")
    res["seconds"] = round(time.time() - t0, 1)
    return res


def pool_seeds(rows: list[dict], preds: list[list[dict]], method: str) -> dict:
    """One set's method over seeds: the pooled summary, each seed's accuracy and their spread."""
    from cotdistill.evaluate import score
    from cotdistill.methods import get_method

    s = score(get_method(method), [p for ps in preds for p in ps])
    keys = ("accuracy", "ci95", "mean_generated_tokens", "seconds_per_100", "post_fraction", "by_mode")
    out = {k: v for k, v in s.items() if k in keys}
    accs = [r["accuracy"] for r in rows]
    out["seed_accuracies"] = accs
    mean = sum(accs) / len(accs)
    out["seed_sd"] = round((sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5, 2) if len(accs) > 1 else 0.0
    out["steps"] = rows[0]["steps"]
    return out


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


def pretrained(args) -> bool:
    return not args.student.startswith("preset:")


def steps_of(name: str, args) -> int:
    real = PRETRAINED_STEPS if pretrained(args) else REAL_STEPS
    return MIXED_STEPS if name == "mixed" else SYNTHETIC.get(name, (None, real))[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--out", type=Path, default=Path("runs/answer_first"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--jobs", type=int, default=2, help="methods trained at once (one process and torch thread each)")
    ap.add_argument("--seeds", type=int, default=1, help="repeat each set with seeds 0..N-1 and pool the figures")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 steps, a few questions")
    ap.add_argument("--steps", type=int, help="optimizer steps for every set (calibration; the README's figures use each set's default)")
    ap.add_argument("--sets", nargs="*", help="only these sets")
    ap.add_argument("--student", default="preset:tiny", help="preset:NAME (from scratch, the default), pretrained:NAME "
                    "or a model path (real-data sets only)")
    ap.add_argument("--layers", type=int, default=None, help="pretrained students: keep this many layers")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    if args.quick and pretrained(args):
        args.layers = 1  # a smoke run of the pretrained path: 1+1 layers, 2 steps
    names = [] if pretrained(args) else [*SYNTHETIC, "mixed"]
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
    seeds = range(args.seeds)
    t0 = time.time()
    # spawn: a CUDA context does not survive fork; each worker starts clean either way.
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=mp.get_context("spawn")) as pool:
        for f in [pool.submit(prepare, n, k, args) for n in names for k in seeds]:
            f.result()
        # Longest jobs first, so the pool's last ones are short.
        jobs = sorted(((n, k, m) for n in names for k in seeds for m in METHODS),
                      key=lambda j: -steps_of(j[0], args) * (2 if j[2] in ("adaptive", "ft_cot") else 1))
        futs = {j: pool.submit(train_eval, *j, args) for j in jobs}
        results = {j: f.result() for j, f in futs.items()}
    sets, forced, routing, mixed_parts, setup = {}, {}, {}, None, {}
    for n in names:
        tests = {}
        for k in seeds:  # each seed's own run folder gets its summary and report
            run = make_run(n, k, args)
            train, tests[k] = run.data()
            run.finish({m: results[n, k, m]["row"] for m in METHODS}, {m: results[n, k, m]["preds"] for m in METHODS},
                       len(train), len(tests[k]))
        sets[n] = {m: pool_seeds([results[n, k, m]["row"] for k in seeds], [results[n, k, m]["preds"] for k in seeds], m)
                   for m in METHODS}
        fs = [results[n, k, "adaptive"]["forced"] for k in seeds]
        forced[n] = {mode: {"accuracy": round(sum(f[mode]["accuracy"] for f in fs) / len(fs), 2),
                            "mean_generated_tokens": round(sum(f[mode]["mean_generated_tokens"] for f in fs) / len(fs), 2)}
                     for mode in ("pre", "post")}
        forced[n]["oracle_accuracy"] = round(sum(f["oracle_accuracy"] for f in fs) / len(fs), 2)
        routing[n] = [results[n, k, "adaptive"]["routing"] for k in seeds]
        if n == "mixed":
            mixed_parts = by_part([(tests[k], {m: results[n, k, m]["preds"] for m in METHODS}) for k in seeds])
        setup[n] = {"n_train": len(train), "n_test": len(tests[0]), "steps": sets[n]["ft_cot"]["steps"], "seeds": args.seeds,
                    "seconds": {m: [results[n, k, m]["seconds"] for k in seeds] for m in METHODS}}
    summary = {
        "sets": sets, "bars": check_bars(sets), "adaptive_forced": forced, "routing": routing,
        "mixed_by_part": mixed_parts, "setup": setup, "student": student_label(args),
        "device": _device(), "quick": args.quick, "seeds": args.seeds, "seconds": round(time.time() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_tables(summary, args)
    return 0


def student_label(args) -> str:
    if not pretrained(args):
        return f"{args.student} (from scratch)"
    return f"{args.student}" + (f" ({args.layers} layers)" if args.layers else "")


def _device() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def print_tables(summary: dict, args) -> None:
    sets = summary["sets"]
    print("\nAdaptive student with its route forced (test set): pre / post / oracle accuracy, routed accuracy")
    for n, f in summary["adaptive_forced"].items():
        print(f"  {n:26} pre {f['pre']['accuracy']:6.2f}  post {f['post']['accuracy']:6.2f}  "
              f"oracle {f['oracle_accuracy']:6.2f}  routed {sets[n]['adaptive']['accuracy']:6.2f}")
    if summary["seeds"] > 1:
        print(f"\nAccuracy of each seed ({summary['seeds']} seeds)")
        for n, ms in sets.items():
            for m, r in ms.items():
                print(f"  {n:26} {m:13} {' '.join(f'{a:6.2f}' for a in r['seed_accuracies'])}   sd {r['seed_sd']:.2f}")
    print("\nBars")
    for bar, v in summary["bars"].items():
        print(f"  {bar}: {json.dumps(v)}")
    seeds = f", {summary['seeds']} seeds pooled" if summary["seeds"] > 1 else ""
    print(f"\nAnswer-first students, {summary['student']}, equal budgets ({summary['device']}, {summary['seconds']:.0f} s{seeds})"
          f" -> {args.out / 'summary.json'}")
    print(f"{'set':26} {'method':13} {'accuracy':>8} {'95% CI':>13} {'gen. tokens':>11} {'s/100 q':>8} {'post %':>7}")
    for n, ms in sets.items():
        for m, r in ms.items():
            post = f"{100 * r['post_fraction']:.1f}" if "post_fraction" in r else "-"
            ci = f"{r['ci95'][0]:.1f}-{r['ci95'][1]:.1f}"
            print(f"{n:26} {m:13} {r['accuracy']:8.2f} {ci:>13} {r['mean_generated_tokens']:11.1f} "
                  f"{r['seconds_per_100']:8.3f} {post:>7}")


if __name__ == "__main__":
    sys.exit(main())
