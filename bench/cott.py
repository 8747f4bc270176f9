"""CoTT against one-step prompt tuning and fine-tuning with a classification head, plus two CoTT
ablations, on 20 Newsgroups (hierarchical topics) and SemEval-2010 Task 8 (relations), with the
pretrained MiniLM masked LM (`pretrained:minilm-mlm`), several seeds each.

Variants: cott; prompt_tuning (one [MASK], same verbalizer and soft prompt); finetune (a head on
[CLS]); cott_no_contrastive (contrastive_weight 0, trained separately); cott_no_rectify (the cott
students answering without rectification: an inference switch, so no extra training). Every
trained variant gets the same optimizer steps, batch, learning rate and data. A seed changes the
training subsample, the test subsample, the initialisation of the new parts and the data order.

The 2-core CPU needs subsamples and short inputs. The defaults are the setup the README's table
was measured with (about 80 minutes on 2 cores): 3 of MiniLM's 6 layers, 600 random training
questions (10% of them for validation) and 500 random test questions per data set and seed,
inputs cut at 128 (20 Newsgroups) / 64 (SemEval) word pieces, 140 optimizer steps at batch 16,
two jobs of one torch thread each. Figures: accuracy and macro-F1 of the final label
(SemEval also its official score: macro-F1 over the 9 relations, direction-aware, Other
excluded), and of the intermediate step for CoTT; mean over seeds and a 95% t-interval.

    python bench/cott.py --out runs/cott [--data ../shared/data] [--seeds 3] [--layers 3] [--jobs 2 --threads 1]
        [--n-train 600 --n-test 500] [--steps 140 | --epochs E] [--cott-options JSON] [--quick]

Each (data set, seed, variant) job trains in its own run folder and leaves its rows there, so a
rerun with the same options reuses finished jobs and trains only the rest.

Prints the table last; writes OUT/summary.json = {"datasets": {"20ng": {VARIANT: {"macro_f1",
"accuracy", "seeds": [per-seed macro-F1], ...}}, "semeval": {...}}, "bars": ..., "setup": ...}.
For SemEval, "macro_f1" is the official score (the task's ranking metric); the plain macro-F1 over
all 19 labels is "macro_f1_all".
"""
from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import harness

DATASETS = {"20ng": ("20newsgroups", 128), "semeval": ("semeval2010_task8", 64)}
TRAINED = {"cott": ("cott", {}), "prompt_tuning": ("prompt_tuning", {}), "finetune": ("finetune_cls", {}),
           "cott_no_contrastive": ("cott", {"contrastive_weight": 0.0})}
VIEWS = {"cott": 3, "cott_no_contrastive": 2, "prompt_tuning": 1, "finetune": 1}  # encoder passes per example
VARIANTS = ["cott", "prompt_tuning", "finetune", "cott_no_contrastive", "cott_no_rectify"]


def make_cfg(args, dataset: str, seed: int, variant: str):
    name, max_len = DATASETS[dataset]
    method, opts = TRAINED[variant]
    opts = {**(args.cott_options if method == "cott" else {}), **opts, "max_length": args.max_length or max_len}
    budget = {"max_steps": args.steps, "epochs": None} if args.steps else {"epochs": args.epochs}
    return harness.config({
        "out": str(args.out / dataset / f"seed{seed}" / variant),
        "task": {"source": "benchmark", "name": name, "data_dir": str(args.data), "n_train": args.n_train,
                 "n_test_max": args.n_test, "sample": "random", "seed": seed},
        "student": harness.student_section(args.student, args.layers),
        "train": {"seed": seed, **budget, "batch_size": 16, "eval_every": args.eval_every, "keep_checkpoints": False,
                  **({"threads": args.threads} if args.threads else {})},
        "eval": {"batch_size": 64}, "methods": [method], "method_options": {method: opts}})


ROW_FILE = "bench_rows.json"  # a finished job's rows: a rerun of the bench reuses them


def run_variant(args, dataset: str, seed: int, variant: str) -> dict:
    """Train and evaluate one (data set, seed, variant) job in its own run folder; a worker process."""
    from cotdistill.config import dump_config

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = make_cfg(args, dataset, seed, variant)
    done, stamp = Path(cfg.out) / ROW_FILE, dump_config(cfg)
    if done.exists():
        kept = json.loads(done.read_text())
        if kept.get("config") == stamp:
            return kept["rows"]
    rows = _train_eval(cfg, variant)
    done.write_text(json.dumps({"config": stamp, "rows": rows}))
    return rows


def _train_eval(cfg, variant: str) -> dict:
    from cotdistill.pipeline import Run

    t0 = time.time()
    run = Run(cfg)
    s = run.run_all()
    row = dict(s["methods"][cfg.methods[0]])
    row["minutes"] = round((time.time() - t0) / 60, 2)
    if variant == "cott":  # the same students without rectification
        row_nr = no_rectify(run, cfg)
        return {"cott": row, "cott_no_rectify": row_nr}
    return {variant: row}


def no_rectify(run, cfg) -> dict:
    from cotdistill.evaluate import predict, score
    from cotdistill.methods import get_method

    t0 = time.time()
    _, test = run.data()
    mdir = run.folder.model("cott")
    model, tok, _ = run.load_trained(mdir)
    m = get_method("cott", {**cfg.method_options["cott"], "rectify": False})
    m = m.load_extras(mdir, model)
    preds = predict(m, model, tok, False, test, batch_size=cfg.eval.batch_size)
    (run.folder.method("cott").root / "predictions_no_rectify.jsonl").write_text("\n".join(json.dumps(p) for p in preds) + "\n")
    return {**score(m, preds), "minutes": round((time.time() - t0) / 60, 2)}


def headline(dataset: str, row: dict) -> float:
    return row["semeval_official_f1"] if dataset == "semeval" else row["macro_f1"]


def pool(dataset: str, rows: list[dict]) -> dict:
    """A variant over seeds: macro-F1 is measured per seed (it does not pool over answers), so its
    mean and t-interval over the seeds (harness.seed_interval)."""
    f1s = [headline(dataset, r) for r in rows]
    accs = [r["accuracy"] for r in rows]
    n = len(f1s)
    f1 = harness.seed_interval(f1s)
    out = {"macro_f1": f1["mean"], "ci95": f1["ci95"], "sd": f1["sd"],
           "accuracy": round(sum(accs) / n, 2), "seeds": f1s, "seed_accuracies": accs,
           "minutes": [r.get("minutes") for r in rows]}
    if dataset == "semeval":
        out["macro_f1_all"] = round(sum(r["macro_f1"] for r in rows) / n, 2)
    if all("intermediate_accuracy" in r for r in rows):
        out["intermediate_accuracy"] = round(sum(r["intermediate_accuracy"] for r in rows) / n, 2)
        out["intermediate_macro_f1"] = round(sum(r["intermediate_macro_f1"] for r in rows) / n, 2)
    if all("step1_intermediate_accuracy" in r for r in rows):  # before rectification
        out["step1_intermediate_accuracy"] = round(sum(r["step1_intermediate_accuracy"] for r in rows) / n, 2)
    return out


def check_bars(datasets: dict) -> dict:
    """CoTT above one-step prompt tuning by more than the seed spread, and at or within the CI of
    fine-tuning."""
    bars = {}
    for d, v in datasets.items():
        if not {"cott", "prompt_tuning", "finetune"} <= v.keys():
            continue
        c, p, f = v["cott"], v["prompt_tuning"], v["finetune"]
        spread = max(c["sd"], p["sd"])
        gap = round(c["macro_f1"] - p["macro_f1"], 2)
        bars[f"{d}: cott - prompt_tuning > seed spread"] = harness.bar(gap, spread, gap > spread)
        bars[f"{d}: cott >= finetune CI low"] = harness.bar(c["macro_f1"], f["ci95"][0], c["macro_f1"] >= f["ci95"][0])
    return bars


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "cott", student="pretrained:minilm-mlm", data=True, steps=140, seeds=True,
                        minilm_layers=True, quick="smoke run: 1 layer, 2 seeds, a few steps on 48 questions")
    ap.set_defaults(seeds=3)
    ap.add_argument("--n-train", type=int, default=600, help="random training questions per data set and seed")
    ap.add_argument("--n-test", type=int, default=500, help="random test questions per data set and seed")
    ap.add_argument("--epochs", type=float, default=None, help="epochs instead of --steps")
    ap.add_argument("--eval-every", type=int, default=35)
    ap.add_argument("--max-length", type=int, default=None, help="input word pieces (default 128 / 64 by data set)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--jobs", type=int, default=2, help="jobs (data set, seed, variant) trained at once, one process each")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--variants", nargs="+", default=list(TRAINED), choices=list(TRAINED),
                    help="trained variants (cott also gives cott_no_rectify); bars need cott, prompt_tuning, finetune")
    ap.add_argument("--cott-options", type=json.loads, default={},
                    help='JSON method options for the CoTT variants, e.g. \'{"step2_weight": 0.5}\' (use another --out)')
    args = harness.parse(ap, argv)
    if args.quick:
        args.layers, args.seeds, args.n_train, args.n_test, args.steps, args.max_length, args.eval_every = \
            1, 2, 48, 24, 3, 48, 3
    if args.epochs is not None:
        args.steps = None  # --epochs replaces the default step budget
    missing = [d for d in args.datasets if not (args.data / {"20ng": "20newsgroups", "semeval": "semeval2010-task8"}[d]).is_dir()]
    if missing:
        print(f"no data for {missing} under {args.data}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    t0 = time.time()
    shown = [v for v in VARIANTS if v in args.variants or (v == "cott_no_rectify" and "cott" in args.variants)]
    rows: dict = {d: {v: [] for v in shown} for d in args.datasets}
    jobs = [(d, seed, variant) for d in args.datasets for seed in range(args.seeds) for variant in args.variants]
    # Longest first (CoTT runs three encoder passes per example), so the pool's last jobs are short.
    jobs.sort(key=lambda j: (-DATASETS[j[0]][1], -VIEWS[j[2]]))
    # spawn: a CUDA context does not survive fork; each worker starts clean either way.
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=mp.get_context("spawn")) as workers:
        futs = {j: workers.submit(run_variant, args, *j) for j in jobs}
        done = {j: f.result() for j, f in futs.items()}
    for d, seed, variant in sorted(done, key=lambda j: j[1]):  # seeds in order in every list
        for v, row in done[d, seed, variant].items():
            rows[d][v].append(row)
    datasets = {d: {v: pool(d, rs) for v, rs in vs.items()} for d, vs in rows.items()}
    summary = {"datasets": datasets, "bars": check_bars(datasets),
               "setup": {"student": args.student, "layers": args.layers or "all", "seeds": args.seeds,
                         "n_train": args.n_train, "n_test": args.n_test, "epochs": None if args.steps else args.epochs,
                         "steps": {d: {v: rows[d][v][0].get("steps") for v in args.variants} for d in args.datasets},
                         "max_length": {d: args.max_length or DATASETS[d][1] for d in args.datasets},
                         "batch_size": 16, "cott_options": args.cott_options, "quick": args.quick},
               "minutes": round((time.time() - t0) / 60, 1)}
    harness.write_summary(args.out, summary)
    print_table(summary, args)
    return 0


def print_table(summary: dict, args) -> None:
    st = summary["setup"]
    print(f"\nCoTT and baselines, {st['student']} ({st['layers']} layers), {st['seeds']} seeds, {st['n_train']} train / "
          f"{st['n_test']} test questions per seed, {summary['minutes']} min -> {args.out / 'summary.json'}")
    print(f"{'data':8} {'variant':20} {'macro-F1':>8} {'95% CI':>13} {'sd':>5} {'acc':>6} {'inter acc':>9}  seeds")
    for d, vs in summary["datasets"].items():
        for v, r in vs.items():
            inter = f"{r['intermediate_accuracy']:9.2f}" if "intermediate_accuracy" in r else f"{'-':>9}"
            print(f"{d:8} {v:20} {r['macro_f1']:8.2f} {r['ci95'][0]:6.1f}-{r['ci95'][1]:<6.1f} {r['sd']:5.2f} "
                  f"{r['accuracy']:6.2f} {inter}  {' '.join(f'{x:.1f}' for x in r['seeds'])}")
    harness.print_bars(summary["bars"])


if __name__ == "__main__":
    sys.exit(main())
