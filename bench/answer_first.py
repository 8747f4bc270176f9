"""Answer-first students: pre-thinking (`ft_cot`), `post`, `adaptive`, `step_by_step` and `direct`,
from-scratch students with equal budgets (same preset, optimizer steps, batch, learning rate and
questions), on synthetic tasks of different difficulty, a mixed set of them, and the released
text-davinci-002 Zero-shot-CoT rationales for coin_flip, last_letter_concatenation and multiarith.

Prints the table (accuracy (95% CI), mean generated tokens per question and seconds per 100
questions per set and method, plus adaptive's share of questions routed to post), then the bars.
Writes OUT/summary.json = {"sets": {SET: {METHOD: {"accuracy", "ci95", "mean_generated_tokens",
"seconds_per_100", "post_fraction" (adaptive)}}}, "bars": {NAME: {value, bar, met}},
"paper_claims": {SET: ...} (post above ft_cot, adaptive above both: as measured),
"agreement": {SET: {"A vs B": {"both_right", "only_A", "only_B", "both_wrong", "same_answer"}}},
"adaptive_forced": ..., ...}.

    python bench/answer_first.py --out runs/answer_first [--data ../shared/data] [--jobs 2] [--seeds 1] [--quick]
    python bench/answer_first.py --out runs/answer_first_smollm2 --student pretrained:smollm2-135m
    python bench/answer_first.py --out runs/answer_first_minilm --student pretrained:minilm-seq2seq --layers 3

`--student pretrained:NAME` (or a model folder) trains a pretrained student instead (real-data sets
only), by its own recipe (config.default_recipe: `pretrained` for the MiniLM warm starts, lr 1e-4,
batch 16; `pretrained_lm` for SmolLM2, lr 1e-4, batch 8) with the same number of optimizer steps
for every method (`--steps`, default 100: about 5.5 epochs of the 287 Coin Flip rationales at
batch 16, 2.8 at batch 8; adaptive and step_by_step see two pairs per question, so fewer passes).

`--seeds N` repeats every set with N seeds (task data, initialisation and split); a set's figures
are then pooled over the seeds (accuracy = mean of the seeds', CI over all N x n_test answers) and
each seed's accuracy is listed. Each (set, seed, method) trains in its own worker process
(`--jobs` at once, one torch thread each, on the GPU when there is one): timings are taken under
the same load for every method, and compare within one run of this script.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import harness
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


def set_config(name: str, seed: int, args) -> dict:
    """The run config of one (set, seed), as data."""
    quick = args.quick
    if pretrained(args):  # the student's pretrained recipe (config.default_recipe), equal steps for every method
        student = {"student": harness.student_section(args.student, args.layers), "eval": {"batch_size": 32},
                   # a smoke run checks that every part runs; at batch 4 its steps cost a third
                   "train": {"batch_size": 4} if quick else {}}
    else:
        student = {"student": {"model": args.student}, "eval": {"batch_size": 250},
                   "train": {"batch_size": 32, "learning_rate": 0.002, "warmup_steps": 100}}
    # A smoke run's students have not learnt to stop: cap generation so it stays a smoke run; its
    # perception module needs only to train and route, not to converge.
    smoke = {"eval": {"max_new_tokens": 24}, "method_options": {"adaptive": {"perception_steps": 20}}} if quick else {}
    common = harness.merge(smoke, student, {"out": str(Path(args.out) / name / f"seed{seed}"), "methods": METHODS,
                                            "train": {"threads": 1, "keep_checkpoints": False, "seed": seed}})
    if name in REAL:
        steps = args.steps or (2 if quick and pretrained(args) else 20 if quick else steps_of(name, args))
        return harness.merge(common, {
            "task": {"source": "benchmark", "name": name, "data_dir": str(args.data), "n_train": 100 if quick else 0,
                     **({"n_test_max": 30, "sample": "random"} if quick else {})},
            "teacher": {"backend": "replay", "path": str(teacher_file(Path(args.data), name))},
            "train": {"max_steps": steps, "eval_every": max(10, steps // 5)}})
    if name == "mixed":
        task = {"name": "mixed", "params": {"parts": [spec for spec, _ in SYNTHETIC.values()]}}
        steps, n_train, n_test = MIXED_STEPS, MIXED_N_TRAIN, 600
    else:
        spec, steps = SYNTHETIC[name]
        task = {"name": spec["name"], "params": spec["params"]}
        n_train, n_test = 3000, 500
    if quick:
        steps, n_train, n_test = 20, 120, 30
    steps = args.steps or steps
    return harness.merge(common, {
        "task": {"source": "synthetic", **task, "n_train": n_train, "n_test": n_test, "seed": seed},
        "teacher": {"backend": "exact"}, "train": {"max_steps": steps, "eval_every": max(10, steps // 5)}})


def make_run(name: str, seed: int, args):
    from cotdistill.pipeline import Run

    return Run(harness.config(set_config(name, seed, args)))


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


def check_bars(sets: dict) -> dict:
    """On each set: post writes at most half of ft_cot's tokens, and adaptive is within 1 point of the
    better of ft_cot and post (or above); on the mixed set the perception module routes both ways."""
    bars: dict = {}
    for name, ms in sets.items():
        ratio = ms["post"]["mean_generated_tokens"] / max(1e-9, ms["ft_cot"]["mean_generated_tokens"])
        bars[f"{name}: post tokens / ft_cot tokens <= 0.5"] = harness.bar(round(ratio, 3), 0.5, ratio <= 0.5)
        best = max(ms["ft_cot"]["accuracy"], ms["post"]["accuracy"])
        bars[f"{name}: adaptive >= max(ft_cot, post) - 1"] = harness.bar(
            ms["adaptive"]["accuracy"], round(best - 1.0, 2), ms["adaptive"]["accuracy"] >= best - 1.0)
    if "mixed" in sets:
        f = sets["mixed"]["adaptive"]["post_fraction"]
        bars["mixed: share routed to post in [0.1, 0.9]"] = harness.bar(f, [0.1, 0.9], 0.1 <= f <= 0.9)
    return bars


def paper_claims(sets: dict, correct: dict[str, dict[str, dict]]) -> dict:
    """Chen et al.'s claims as measured on each set (reported, not bars): post-thinking above
    pre-thinking (ft_cot), and adaptive thinking above both, each with the difference paired by
    question and its 95% interval (`correct`: set -> method -> {(seed, id): right}); adaptive is
    paired with the better of the two."""
    out = {}
    for name, ms in sets.items():
        f, p, a = (ms[m]["accuracy"] for m in ("ft_cot", "post", "adaptive"))
        c = correct[name]
        out[name] = {"post > ft_cot": {"post": p, "ft_cot": f, "holds": p > f,
                                       "paired": harness.paired(c["post"], c["ft_cot"])},
                     "adaptive > ft_cot and post": {"adaptive": a, "best_of_both": max(f, p), "holds": a > max(f, p),
                                                    "paired": harness.paired(c["adaptive"],
                                                                             c["post" if p > f else "ft_cot"])}}
    return out


def agreement_of(preds: dict[str, list[dict]]) -> dict:
    """Per question, pooled over seeds: for each pair of methods, how many questions both answer
    right, only the first, only the second, neither; and how often their answers are the same."""
    out = {}
    names = list(preds)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = preds[a], preds[b]
            if [p["id"] for p in pa] != [p["id"] for p in pb]:
                raise ValueError(f"{a} and {b} answered different questions")
            ra, rb = [p["correct"] for p in pa], [p["correct"] for p in pb]
            out[f"{a} vs {b}"] = {"both_right": sum(x and y for x, y in zip(ra, rb)),
                                  f"only_{a}": sum(x and not y for x, y in zip(ra, rb)),
                                  f"only_{b}": sum(y and not x for x, y in zip(ra, rb)),
                                  "both_wrong": sum(not x and not y for x, y in zip(ra, rb)),
                                  "same_answer": sum(x["prediction"] == y["prediction"] for x, y in zip(pa, pb))}
    return out


def pretrained(args) -> bool:
    return not args.student.startswith("preset:")


def steps_of(name: str, args) -> int:
    real = PRETRAINED_STEPS if pretrained(args) else REAL_STEPS
    return MIXED_STEPS if name == "mixed" else SYNTHETIC.get(name, (None, real))[1]


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "answer_first", student="preset:tiny", data=True, steps=None, seeds=True,
                        quick="smoke run: 20 steps, a few questions")
    ap.add_argument("--jobs", type=int, default=2, help="methods trained at once (one process and torch thread each)")
    ap.add_argument("--sets", nargs="*", help="only these sets")
    args = harness.parse(ap, argv)
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
        futs = {pool.submit(train_eval, *j, args): j for j in jobs}
        results = {}
        for f in as_completed(futs):  # a long run says what finished, as it finishes
            j = futs[f]
            results[j] = r = f.result()
            print(f"[{len(results)}/{len(futs)}] {j[0]} seed {j[1]} {j[2]}: accuracy {r['row']['accuracy']:.2f}, "
                  f"{r['row']['mean_generated_tokens']:.1f} tokens, {r['seconds'] / 60:.1f} min", file=sys.stderr, flush=True)
    sets, forced, routing, mixed_parts, setup, agreement, correct = {}, {}, {}, None, {}, {}, {}
    for n in names:
        tests = {}
        for k in seeds:  # each seed's own run folder gets its summary and report
            run = make_run(n, k, args)
            train, tests[k] = run.data()
            run.finish({m: results[n, k, m]["row"] for m in METHODS}, {m: results[n, k, m]["preds"] for m in METHODS},
                       len(train), len(tests[k]))
        sets[n] = {m: harness.pool_seeds([results[n, k, m]["row"] for k in seeds], [results[n, k, m]["preds"] for k in seeds], m)
                   for m in METHODS}
        fs = [results[n, k, "adaptive"]["forced"] for k in seeds]
        forced[n] = {mode: {"accuracy": round(sum(f[mode]["accuracy"] for f in fs) / len(fs), 2),
                            "mean_generated_tokens": round(sum(f[mode]["mean_generated_tokens"] for f in fs) / len(fs), 2)}
                     for mode in ("pre", "post")}
        forced[n]["oracle_accuracy"] = round(sum(f["oracle_accuracy"] for f in fs) / len(fs), 2)
        routing[n] = [results[n, k, "adaptive"]["routing"] for k in seeds]
        if n == "mixed":
            mixed_parts = by_part([(tests[k], {m: results[n, k, m]["preds"] for m in METHODS}) for k in seeds])
        agreement[n] = agreement_of({m: [p for k in seeds for p in results[n, k, m]["preds"]] for m in METHODS})
        correct[n] = {m: {(k, p["id"]): int(p["correct"]) for k in seeds for p in results[n, k, m]["preds"]}
                      for m in METHODS}
        setup[n] = {"n_train": len(train), "n_test": len(tests[0]), "steps": sets[n]["ft_cot"]["steps"], "seeds": args.seeds,
                    "seconds": {m: [results[n, k, m]["seconds"] for k in seeds] for m in METHODS}}
    summary = {
        "sets": sets, "bars": check_bars(sets), "paper_claims": paper_claims(sets, correct), "agreement": agreement,
        "adaptive_forced": forced, "routing": routing,
        "mixed_by_part": mixed_parts, "setup": setup, "student": student_label(args),
        "device": harness.device(), "quick": args.quick, "seeds": args.seeds, "seconds": round(time.time() - t0, 1),
    }
    harness.write_summary(args.out, summary)
    print_tables(summary, args)
    return 0


def student_label(args) -> str:
    if not pretrained(args):
        return f"{args.student} (from scratch)"
    return f"{args.student}" + (f" ({args.layers} layers)" if args.layers else "")


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
    harness.print_bars(summary["bars"])


if __name__ == "__main__":
    sys.exit(main())
