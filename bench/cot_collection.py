"""The CoT Collection on a CPU: CoT-tune one student on a task mixture, compare it with its direct
twin on BIG-bench tasks neither saw (zero-shot and after k-shot adaptation), and use it as the
starting student of Fine-tune-CoT (continual tuning).

1. Mixture (no BIG-bench task in it): the seven FLAN CoT families with their human rationales,
   GSM8K human solutions (both through the `dataset` teacher) and two synthetic tasks (exact
   teacher), `--cap` training examples each. `cot_tuning` and `cot_tuning_direct` train on it with
   the same optimizer steps, batch and learning rate (`--steps`).
2. Unseen: `cotdistill.unseen.evaluate_unseen` for both students on `--tasks` (default: 12
   BIG-bench tasks from ../shared/data/bigbench), `--n-eval` questions each, zero-shot and k = 16
   and 64 (adaptation on direct pairs: BIG-bench has no rationales; see cotdistill/unseen.py).
3. Continual: `ft_cot` on Coin Flip and Last Letter (released text-davinci-002 rationales, official
   splits, replay teacher) starting from the CoT-tuned student and from the same pretrained student
   without CoT tuning, same recipe.

    python bench/cot_collection.py --out runs/cot_collection [--data ../shared/data] [--layers 3] [--quick]
    python bench/cot_collection.py --out runs/cot_collection_smollm2 --student pretrained:smollm2-135m

Prints the table, then the bars; writes OUT/summary.json = {"unseen": {"cot_tuned": {"zero_shot",
"k16", "k64", "ci95", "per_task"}, "direct_tuned": {...}, "chance": c}, "unseen_paired": {"zero_shot":
{"difference", "ci95", "tasks", "questions"}, ...} (CoT-tuned minus direct-tuned on the task average,
paired by question), "continual": {TASK: {"from_cot_tuned": a, "from_base": b}}, "mixture": {...},
"bars": {NAME: {value, bar, met}}, "minutes": {...}, "setup": {...}}.
Every stage is a run folder under OUT and resumes: a rerun trains only what is missing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)
from finetune_cot_replay import teacher_file  # noqa: E402

from cotdistill.config import default_recipe  # noqa: E402

FLAN = ("aqua", "creak", "ecqa", "gsm8k", "qasc", "sensemaking", "strategyqa")
UNSEEN = ("causal_judgment", "date_understanding", "disambiguation_qa", "formal_fallacies_syllogisms_negation",
          "geometric_shapes", "hyperbaton", "logical_deduction", "movie_recommendation", "penguins_in_a_table",
          "reasoning_about_colored_objects", "snarks", "temporal_sequences")
CONTINUAL = ("coin_flip", "last_letter_concatenation")
KEEP_NONE = {"train": {"keep_checkpoints": False}}  # finished students keep model/ only: MiniLM checkpoints are ~1 GB
TUNED = {"cot_tuned": "cot_tuning", "direct_tuned": "cot_tuning_direct"}


def mixture(args) -> list[dict]:
    data = str(args.data)
    flan = [{"name": f"flan_{f}", "cap": args.cap, "teacher": {"backend": "dataset"},
             "task": {"source": "benchmark", "name": f"flan_cot_{f}", "data_dir": data, "n_test_max": args.mix_test}}
            for f in FLAN]
    gsm8k = {"name": "gsm8k", "cap": args.cap, "teacher": {"backend": "dataset"},
             "task": {"source": "benchmark", "name": "gsm8k", "data_dir": data, "n_test_max": args.mix_test}}
    synthetic = [{"name": n, "teacher": {"backend": "exact"},
                  "task": {"source": "synthetic", "name": n, "n_train": args.cap, "n_test": args.mix_test, "params": p}}
                 for n, p in (("arithmetic", {"n_ops": 2}), ("word_problems", {"n_steps": 2}))]
    return [*flan, gsm8k, *synthetic]


def smoke(args) -> dict:
    """A smoke run checks that every part runs, not what it learns: batches of 4 cut its steps'
    cost (the 30,522-word output layer dominates a 1+1-layer MiniLM's step) by about 3x."""
    return {"train": {"batch_size": 4}} if args.quick else {}


def tune(args) -> dict:
    from cotdistill.pipeline import Run

    cfg = harness.config(
        {"out": str(args.out / "mixture"), "task": {"source": "mixture", "mixture": mixture(args)},
         "student": harness.student_section(args.student, args.layers),
         "train": {"max_steps": args.steps, "epochs": None, "eval_every": max(2, args.steps // 4)},
         "eval": {"batch_size": 32, "max_new_tokens": args.max_new_tokens},
         "methods": ["cot_tuning", "cot_tuning_direct"]}, KEEP_NONE, smoke(args))
    s = Run(cfg).run_all()
    keep = ("accuracy", "ci95", "by_task", "task_mean_accuracy", "train_pairs", "steps", "best_step")
    return {m: {k: v for k, v in r.items() if k in keep} for m, r in s["methods"].items()}


def unseen(args) -> dict:
    from cotdistill.runs import RunFolder
    from cotdistill.unseen import evaluate_unseen

    tasks = [args.data / "bigbench" / t for t in args.tasks]
    out = {}
    for key, method in TUNED.items():
        s = evaluate_unseen(str(RunFolder(args.out / "mixture").model(method)), tasks, args.out / "unseen" / key,
                            method=method, shots=args.shots, n_eval=args.n_eval,
                            overrides=harness.flags(harness.merge(
                                {"train": {"recipe": default_recipe(args.student), "epochs": args.adapt_epochs,
                                           "batch_size": 8, "warmup_steps": 0},
                                 "eval": {"batch_size": 32, "max_new_tokens": args.max_new_tokens}},
                                KEEP_NONE, smoke(args))))
        out[key] = s
    out["chance"] = out["cot_tuned"]["chance"]
    return out


def continual_key(args) -> str:
    """Summary key and folder of the continual part: a longer budget than the recipe's lands
    beside the default one instead of retraining it."""
    return "continual" if args.continual_epochs is None else f"continual_{args.continual_epochs:g}ep"


def continual(args) -> dict:
    from cotdistill.pipeline import Run
    from cotdistill.runs import RunFolder

    res = {}
    budget = {"epochs": None, "max_steps": args.steps} if args.quick else \
        ({"epochs": args.continual_epochs} if args.continual_epochs is not None else {})
    tuned = {"model": str(RunFolder(args.out / "mixture").model("cot_tuning"))}
    for task in args.continual:
        row = {}
        for key, student in (("from_cot_tuned", tuned), ("from_base", harness.student_section(args.student, args.layers))):
            # The student's own recipe (config.default_recipe) with this budget, for both starts.
            cfg = harness.config(
                {"out": str(args.out / continual_key(args) / task / key),
                 "task": {"source": "benchmark", "name": task, "data_dir": str(args.data), "n_train": 0,
                          **({"n_test_max": args.n_eval} if args.quick else {})},
                 "teacher": {"backend": "replay", "path": str(teacher_file(args.data, task))}, "student": student,
                 "train": {"recipe": default_recipe(args.student), **budget}, "eval": {"batch_size": 32},
                 "methods": ["ft_cot"]}, KEEP_NONE, smoke(args))
            s = Run(cfg).run_all()["methods"]["ft_cot"]
            row[key], row[f"{key}_ci95"], row[f"{key}_steps"] = s["accuracy"], s["ci95"], s["steps"]
            row[f"{key}_best_step"] = s.get("best_step")
        res[task] = row
    return res


def continual_parts(old: dict, key: str, new: dict) -> dict:
    """The continual parts of the summary after this run: what it did not redo (another budget,
    tasks left out of --continual) is kept from the previous summary `old`, so a rerun for one
    task does not erase the others' figures."""
    parts = {k: v for k, v in old.items() if k.startswith("continual") and k != key}
    return {**parts, key: {**old.get(key, {}), **new}}


def paired_difference(out: Path, tasks: list[str], k: int) -> dict | None:
    """CoT-tuned minus direct-tuned accuracy (points) on the average over the unseen tasks at k shots,
    paired by question (both students answer the same evaluation questions): the mean over tasks of
    each task's mean difference, with a 95% interval from the per-task paired variances."""
    import math

    from cotdistill.runs import RunFolder
    from cotdistill.unseen import task_name

    means, var, n = [], 0.0, 0
    for t in tasks:
        got = []
        for key, method in TUNED.items():
            f = RunFolder(out / "unseen" / key / task_name(t) / f"k{k}").method(method).predictions
            if not f.exists():
                return None
            got.append(harness.correct_by_id(f))
        mean, v, count = harness.paired_terms(*got)
        means.append(mean)
        var, n = var + v, n + count
    diff, half = 100 * sum(means) / len(means), 100 * 1.96 * math.sqrt(var) / len(means)
    return {"difference": round(diff, 2), "ci95": [round(diff - half, 2), round(diff + half, 2)], "tasks": len(means),
            "questions": n}


def bars(u: dict, parts: dict, paired: dict | None = None) -> dict:
    """The issue's bars: the unseen average (zero-shot, k = 64) and every continual part's tasks."""
    out = {}
    for k in [s for s in ("zero_shot", "k64") if s in u["cot_tuned"]]:
        ct, dt = u["cot_tuned"], u["direct_tuned"]
        out[f"unseen_{k}_cot_tuned_above_direct_beyond_ci"] = harness.bar(
            {"cot_tuned": ct[k], "direct_tuned": dt[k], "cot_ci95": ct["ci95"][k]}, dt["ci95"][k][1],
            ct["ci95"][k][0] > dt["ci95"][k][1])
    for k, p in (paired or {}).items():
        if p:
            out[f"unseen_{k}_cot_tuned_minus_direct_tuned_paired"] = harness.bar(p, 0, p["difference"] > 0)
    for key, c in parts.items():
        for task, r in c.items():
            # the CoT-tuned start at or above the plain one (issue 32's wording)
            out[f"{key}_{task}"] = harness.bar(r["from_cot_tuned"], r["from_base"], r["from_cot_tuned"] >= r["from_base"])
    return out


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "cot_collection", student="pretrained:minilm-seq2seq", data=True, steps=400,
                        minilm_layers=True, quick="smoke run: 1+1 layers, a few steps, 3 tasks, k = 4")
    ap.add_argument("--cap", type=int, default=150, help="training examples per mixture task")
    ap.add_argument("--mix-test", type=int, default=20, help="test questions per mixture task")
    ap.add_argument("--tasks", nargs="+", default=list(UNSEEN), help="BIG-bench tasks under DATA/bigbench")
    ap.add_argument("--shots", nargs="+", type=int, default=[0, 16, 64])
    ap.add_argument("--n-eval", type=int, default=250,
                    help="evaluation questions per unseen task (a 4-point gap needs about 250: README)")
    ap.add_argument("--adapt-epochs", type=float, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--continual", nargs="*", default=list(CONTINUAL))
    ap.add_argument("--continual-epochs", type=float, default=None,
                    help="Fine-tune-CoT epochs of the continual part (default: the recipe's); another value "
                         "lands in DIR/continual_{N}ep and the summary's `continual_{N}ep`, beside the default")
    args = harness.parse(ap, argv)
    if args.quick:
        args.layers = 1 if args.student.startswith("pretrained:") else None
        args.cap, args.mix_test, args.steps, args.tasks = 8, 2, 2, args.tasks[:3]
        args.shots, args.n_eval, args.adapt_epochs, args.max_new_tokens = [0, 4], 12, 1, 8
        args.continual = args.continual[:1]
    missing = [p for p in [args.data / "flan-cot", args.data / "gsm8k", *(args.data / "bigbench" / t for t in args.tasks),
                           *(teacher_file(args.data, t) for t in args.continual)] if not p.exists()]
    if missing:
        print(f"missing data: {[str(m) for m in missing]}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    minutes, t0 = {}, time.time()
    mix = tune(args)
    minutes["mixture"] = round((time.time() - t0) / 60, 1)
    t1 = time.time()
    u = unseen(args)
    minutes["unseen"] = round((time.time() - t1) / 60, 1)
    t2 = time.time()
    c, key = continual(args), continual_key(args)
    minutes[key] = round((time.time() - t2) / 60, 1)
    old = harness.read_summary(args.out)
    parts = continual_parts(old if old.get("setup", {}).get("quick") == args.quick else {}, key, c)
    paired = {("zero_shot" if k == 0 else f"k{k}"): paired_difference(args.out, args.tasks, k) for k in args.shots}
    summary = {"unseen_paired": paired,
               "unseen": {k: ({kk: vv for kk, vv in v.items() if kk != "setup"} if isinstance(v, dict) else v)
                          for k, v in u.items()},
               **parts, "mixture": mix, "bars": bars(u, parts, paired), "minutes": {**old.get("minutes", {}), **minutes},
               "setup": {"student": args.student, "layers": args.layers, "cap": args.cap, "steps": args.steps,
                         "tasks": args.tasks, "shots": args.shots, "n_eval": args.n_eval,
                         "adapt_epochs": args.adapt_epochs, "quick": args.quick}}
    harness.write_summary(args.out, summary)
    print_table(summary)
    return 0


def print_table(s: dict) -> None:
    u = s["unseen"]
    keys = u["cot_tuned"]["settings"]
    for key in sorted(k for k in s if k.startswith("continual")):
        print(f"\n{key}: Fine-tune-CoT test accuracy %: " +
              "; ".join(f"{t}: from CoT-tuned {r['from_cot_tuned']:.2f}, from base {r['from_base']:.2f}"
                        for t, r in s[key].items()))
    print(f"\nUnseen BIG-bench tasks, accuracy % ({s['setup']['student']}, {s['setup']['layers']} layers; "
          f"minutes: {s['minutes']})")
    cols = [(st, k) for st in TUNED for k in keys]
    print(f"{'task':40} {'chance':>6} " + " ".join(f"{st.split('_')[0] + ' ' + k:>14}" for st, k in cols))
    for t in sorted(u["cot_tuned"]["per_task"]):
        print(f"{t:40} {u['cot_tuned']['per_task'][t]['chance']:6.1f} " +
              " ".join(f"{u[st]['per_task'][t][k]:14.2f}" for st, k in cols))
    print(f"{'average':40} {u['chance']:6.1f} " + " ".join(f"{u[st][k]:14.2f}" for st, k in cols))
    print(f"{'95% CI of the average':40} {'':6} " +
          " ".join(f"{u[st]['ci95'][k][0]:6.1f}-{u[st]['ci95'][k][1]:<7.1f}" for st, k in cols))
    harness.print_bars(s["bars"])

if __name__ == "__main__":
    sys.exit(main())
