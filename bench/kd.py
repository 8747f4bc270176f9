"""White-box distillation (`kd`) against Fine-tune-CoT and TRL's GKDTrainer, side by side at equal
steps: the teacher is a SmolLM2-135M `ft_cot` student of the task (trained here first, on the
released text-davinci-002 rationales of the official split), the student SmolLM2 with a subset of
its layers (`--layers`, default 10 of 30), same tokenizer, same ft_cot pairs, same steps, batch,
learning rate, warm-up and precision for every method:

    ft_cot        the rationales' text alone (cross-entropy)
    kd            alpha x cross-entropy + (1 - alpha) x KL(teacher || student), teacher on the fly
    kd_on_policy  the same with a share lambda of the batches sampled by the student (GKD)
    trl_gkd       trl's GKDTrainer on the same encoded pairs: forward KL (beta 0), the same lambda

Each student is scored on the official test split with Fine-tune-CoT's decoding and answer reading,
at its last step (no checkpoint choice: equal steps). Speed is target tokens (the tokens of the
training pairs that carry loss) per second of the Trainer's training time without its evaluations.

    python bench/kd.py --data ../shared/data --out runs/kd [--steps 60] [--layers 10] [--lmbda 0.5]
    python bench/kd.py --quick --out /tmp/kd    # smoke run: from-scratch presets on a synthetic task

Prints the table, then the bars; writes OUT/summary.json = {"tasks": {TASK: {"teacher": {accuracy,
ci95}, METHOD: {"accuracy", "ci95", "target_tokens_per_s", "train_seconds", "mean_generated_tokens",
"steps", ...}}}, "bars": {...}, "setup": {...}}. Every part resumes: the run folders resume as any
run does, and trl_gkd's result is read back from OUT/TASK/trl_gkd/result.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import harness
from finetune_cot_replay import teacher_file

METHODS = ["ft_cot", "kd", "kd_on_policy", "trl_gkd"]
TASKS = ["coin_flip", "last_letter_concatenation"]
KEEP = ("accuracy", "ci95", "n", "steps", "mean_generated_tokens", "no_answer", "train_pairs")


def data_sections(args, task: str) -> dict:
    """The task and teacher sections every run of `task` shares (so all see the same pairs)."""
    if args.quick:  # synthetic, exact rationales: no shared data needed
        return {"task": {"source": "synthetic", "name": "last_letters", "n_train": 120, "n_test": 16},
                "teacher": {"backend": "exact"}, "eval": {"max_new_tokens": 60}}
    return {"task": {"source": "benchmark", "name": task, "data_dir": str(args.data), "n_train": 0},
            "teacher": {"backend": "replay", "path": str(teacher_file(args.data, task))}}


def student_train(args) -> dict:
    """Every student's training section: equal steps, the last step scored."""
    train = {"max_steps": args.steps, "epochs": None, "batch_size": args.batch_size, "eval_every": args.steps,
             "keep_checkpoints": False}
    return {**train, "warmup_steps": 2} if args.quick else train


def train_teacher(args, task: str) -> tuple[Path, dict]:
    """The task's ft_cot teacher: the full student (all layers), its default recipe."""
    from cotdistill.pipeline import Run

    train = {"max_steps": 40, "epochs": None, "eval_every": 20, "warmup_steps": 2} if args.quick else {}
    run = Run(harness.config({"out": str(args.out / task / "teacher"), "student": {"model": args.teacher_student},
                              "train": train, "methods": ["ft_cot"]}, data_sections(args, task)))
    s = run.run_all()["methods"]["ft_cot"]
    return run.folder.model("ft_cot"), {k: v for k, v in s.items() if k in KEEP}


def train_seconds(log_rows: list[dict]) -> float:
    """The Trainer's training time without its evaluations (the closing record's train_runtime
    minus every eval_runtime)."""
    total = next(r["train_runtime"] for r in reversed(log_rows) if "train_runtime" in r)
    return total - sum(r.get("eval_runtime", 0.0) for r in log_rows)


def training_pairs(run) -> tuple[list, list]:
    """(train, validation) ft_cot pairs of the run, as its methods train on them."""
    from cotdistill.pipeline import rationales_by_question

    train, _ = run.data()
    by_q = rationales_by_question(run.curated())
    tr, va = run.split_val(train)
    method = run.cfg.method("ft_cot")
    return method.pairs(tr, by_q, False), method.pairs(va, by_q, False)


def target_lengths(feats: list[dict]) -> list[int]:
    """The tokens carrying loss in each encoded pair."""
    return [sum(1 for t in f["labels"] if t != -100) for f in feats]


def per_token(pairs: list, tok) -> float:
    from cotdistill.students.data import encode_pairs

    feats, _ = encode_pairs(pairs, tok, False, 10 ** 6)
    return sum(target_lengths(feats)) / len(feats)


def student_runs(args, task: str, teacher: Path) -> dict:
    """ft_cot and kd in one run folder, kd_on_policy in another; rows with their speed."""
    from cotdistill.io import read_jsonl_list
    from cotdistill.pipeline import Run
    from cotdistill.students import load_tokenizer

    kd = {"teacher": str(teacher), "alpha": args.alpha}
    rows = {}
    for name, methods, opts in (("main", [m for m in ("ft_cot", "kd") if m in args.methods], kd),
                                ("on_policy", ["kd"] if "kd_on_policy" in args.methods else [], {**kd, "on_policy": args.lmbda})):
        if not methods:
            continue
        run = Run(harness.config({"out": str(args.out / task / name), "methods": methods,
                                  "student": harness.student_section(args.student, args.layers),
                                  "train": student_train(args), "method_options": {"kd": opts}}, data_sections(args, task)))
        t0 = time.time()
        s = run.run_all()
        for m in methods:
            label = "kd_on_policy" if name == "on_policy" else m
            r = {k: v for k, v in s["methods"][m].items() if k in KEEP}
            seconds = train_seconds(read_jsonl_list(run.folder.method(m).train_log))
            r["train_seconds"] = round(seconds, 1)
            rows[label] = r
        rows[f"_{name}_minutes"] = round((time.time() - t0) / 60, 1)
        if "_target_tokens_per_pair" not in rows:  # the same pairs in every run: counted once
            pairs, _ = training_pairs(run)
            rows["_target_tokens_per_pair"] = per_token(pairs, load_tokenizer(str(run.folder.model(methods[0]))))
    return rows


def trl_gkd(args, task: str, teacher: Path) -> dict:
    """trl's GKDTrainer on the same encoded ft_cot pairs, then Fine-tune-CoT's evaluation of its student."""
    import torch
    from datasets import Dataset
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from cotdistill.evaluate import predict, score
    from cotdistill.io import read_json, write_json, write_jsonl
    from cotdistill.pipeline import Run
    from cotdistill.students import load_student
    from cotdistill.students.data import Collator, encode_pairs
    from cotdistill.students.train import bf16_enabled

    folder = args.out / task / "trl_gkd"
    if (folder / "result.json").exists():
        return read_json(folder / "result.json")
    # the run folder of this task's data (and its ft_cot settings, for evaluation)
    run = Run(harness.config({"out": str(folder / "run"), "methods": ["ft_cot"],
                              "student": harness.student_section(args.student, args.layers),
                              "train": student_train(args)}, data_sections(args, task)))
    train, test, curated = run.prepare()
    pairs, _ = training_pairs(run)
    model, tok, _ = run.student("ft_cot", train, curated)  # as the runs beside it load it
    feats, skipped = encode_pairs(pairs, tok, False, run.cfg.train.max_length)
    teach, _, _ = load_student(str(teacher))
    bf16 = bf16_enabled(run.cfg.train)  # as the runs beside it train
    longest = max(target_lengths(feats))
    cfg = GKDConfig(
        output_dir=str(folder / "trainer"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=run.cfg.train.learning_rate, warmup_steps=run.cfg.train.warmup_steps,
        weight_decay=run.cfg.train.weight_decay, lr_scheduler_type="constant_with_warmup", bf16=bf16,
        lmbda=args.lmbda, beta=0.0, temperature=1.0, max_new_tokens=longest, save_strategy="no", report_to=[],
        logging_steps=max(1, args.steps // 10), seed=run.cfg.train.seed, use_cpu=not torch.cuda.is_available())

    padded = Collator(tok.pad_token_id)

    def collate(batch: list[dict]) -> dict:
        """The right-padded batch every method trains on, and the left-padded sources GKD samples after."""
        out = {k: v for k, v in padded(batch).items() if k != "weights"}
        srcs = [[t for t, lab in zip(f["input_ids"], f["labels"]) if lab == -100] for f in batch]
        m, pad = max(len(s) for s in srcs), tok.pad_token_id
        return {**out, "prompts": torch.tensor([[pad] * (m - len(s)) + s for s in srcs]),
                "prompt_attention_mask": torch.tensor([[0] * (m - len(s)) + [1] * len(s) for s in srcs])}

    data = Dataset.from_list([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in feats])
    trainer = GKDTrainer(model=model, teacher_model=teach, args=cfg, train_dataset=data, data_collator=collate,
                         processing_class=tok)
    t0 = time.time()
    out = trainer.train()
    minutes = (time.time() - t0) / 60
    model_dir = folder / "model"
    trainer.model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    model, tok, _ = run.load_trained(model_dir)
    method = run.cfg.method("ft_cot")
    preds = predict(method, model, tok, False, test, max_new_tokens=run._max_new_tokens(longest),
                    batch_size=run.cfg.eval.batch_size)
    metrics = score(method, preds)
    write_jsonl(folder / "predictions.jsonl", preds)
    result = {**{k: v for k, v in metrics.items() if k in KEEP}, "steps": out.global_step, "train_pairs": len(feats),
              "skipped_overlong": skipped, "train_seconds": round(out.metrics["train_runtime"], 1),
              "bf16": bf16, "_minutes": round(minutes, 1)}
    write_json(folder / "result.json", result)
    return result


def run_task(args, task: str) -> dict:
    teacher, teacher_row = train_teacher(args, task)
    rows = {"teacher": teacher_row, **student_runs(args, task, teacher)}
    if "trl_gkd" in args.methods:
        rows["trl_gkd"] = trl_gkd(args, task, teacher)
    per_pair = rows["_target_tokens_per_pair"]
    for r in (rows[m] for m in METHODS if m in rows):
        r["target_tokens_per_s"] = round(per_pair * args.batch_size * r["steps"] / r["train_seconds"], 1)
    rows["_target_tokens_per_pair"] = round(per_pair, 1)
    rows["_paired_with_ft_cot"] = paired_with_ft_cot(args.out / task)
    return rows


def paired_with_ft_cot(folder: Path) -> dict:
    """Each student's accuracy minus ft_cot's, paired by test question, with its 95% interval."""
    from cotdistill.runs import RunFolder

    files = {"ft_cot": RunFolder(folder / "main").method("ft_cot").predictions,
             "kd": RunFolder(folder / "main").method("kd").predictions,
             "kd_on_policy": RunFolder(folder / "on_policy").method("kd").predictions,
             "trl_gkd": folder / "trl_gkd" / "predictions.jsonl"}
    return harness.paired_against(files, "ft_cot")


def check_bars(tasks: dict) -> dict:
    out = {}
    above = {t: r["_paired_with_ft_cot"]["kd"] for t, r in tasks.items() if "kd" in r.get("_paired_with_ft_cot", {})}
    if above:  # the bar is the point difference; its paired interval says whether it is more than noise
        out["kd above ft_cot at equal steps on at least one task (kd - ft_cot, points, paired 95% CI)"] = harness.bar(
            above, "> 0 on one task", any(v["difference"] > 0 for v in above.values()))
    for t, r in tasks.items():
        if {"kd_on_policy", "trl_gkd"} <= r.keys():  # the same work per step: on-policy share, teacher on the fly
            a, b = r["kd_on_policy"]["target_tokens_per_s"], r["trl_gkd"]["target_tokens_per_s"]
            out[f"{t}: kd_on_policy not slower than trl_gkd per target token"] = harness.bar(
                {"kd_on_policy": a, "trl_gkd": b, "ratio": round(a / b, 2)}, ">= 1.0 x trl_gkd", a >= b)
    return out


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "kd", student="pretrained:smollm2-135m", data=True, steps=60, batch_size=8,
                        quick="smoke run: from-scratch presets on a synthetic task, a few steps")
    ap.set_defaults(layers=10)
    ap.add_argument("--teacher-student", default=None,
                    help="what the teacher is fine-tuned from (default: --student with all its layers)")
    ap.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS, help="released rationales of these tasks")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--alpha", type=float, default=0.5, help="kd: weight of the cross-entropy")
    ap.add_argument("--lmbda", type=float, default=0.5, help="kd_on_policy and trl_gkd: share of on-policy batches")
    args = harness.parse(ap, argv)
    if args.quick:
        args.student, args.layers, args.steps, args.batch_size, args.tasks = "preset:tiny", None, 4, 4, ["last_letters"]
    args.teacher_student = args.teacher_student or args.student
    if not args.quick and not teacher_file(args.data, args.tasks[0]).exists():
        print(f"no released rationales under {args.data}; pass --data pointing at shared/data (or --quick)",
              file=sys.stderr)
        return 2
    t0 = time.time()
    summary = {"tasks": harness.read_summary(args.out).get("tasks", {})}
    for task in args.tasks:
        summary["tasks"][task] = run_task(args, task)
        harness.write_summary(args.out, summary)  # a long run keeps what it did
    summary["bars"] = check_bars({t: summary["tasks"][t] for t in args.tasks})
    summary["setup"] = {"student": args.student, "layers": args.layers, "teacher_student": args.teacher_student,
                        "steps": args.steps, "batch_size": args.batch_size, "alpha": args.alpha, "lmbda": args.lmbda,
                        "methods": args.methods, "quick": args.quick, "device": harness.device()}
    summary["minutes"] = round((time.time() - t0) / 60, 1)
    harness.write_summary(args.out, summary)
    layers = f" ({args.layers} layers)" if args.layers else ""
    print(f"\nkd vs ft_cot vs GKDTrainer, student {args.student}{layers}, {args.steps} steps at batch "
          f"{args.batch_size}, {summary['minutes']} min -> {args.out / 'summary.json'}")
    harness.print_table(["task", "method", "accuracy", "95% CI", "gen. tokens", "target tok/s", "train s"],
                        [[t, m, f"{r['accuracy']:.2f}", f"{r['ci95'][0]:.1f}-{r['ci95'][1]:.1f}",
                          f"{r.get('mean_generated_tokens', float('nan')):.1f}",
                          f"{r['target_tokens_per_s']:.1f}" if "target_tokens_per_s" in r else "-",
                          f"{r['train_seconds']:.0f}" if "train_seconds" in r else "-"]
                         for t in args.tasks for m, r in summary["tasks"][t].items() if not m.startswith("_")])
    harness.print_bars(summary["bars"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
