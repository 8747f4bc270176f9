"""Replay the released text-davinci-002 Zero-shot-CoT completions of Fine-tune-CoT through
cotdistill's teacher protocol, and measure:

1. teacher accuracy per task over all questions (the greedy completion, completion_index 0),
   with the paper-compatible extraction (must match the paper's Teacher row within 0.5) and with
   cotdistill's default extractor, plus how many questions the two disagree on;
2. kept counts after curation on the official train split;
3. test accuracy of `direct` and `ft_cot` students trained on the kept rationales, printed beside
   the paper's GPT-2 124M and Flan-T5-small Fine-tune-CoT rows: from-scratch students
   (`--student preset:tiny`, the default, on coin_flip and last_letter_concatenation) or a
   pretrained one (`--student pretrained:smollm2-135m` or `pretrained:minilm-seq2seq`, on all seven
   tasks by default, Coin Flip, Last Letter, MultiArith and Date Understanding first), with the
   earlier MiniLM and from-scratch rows of this project beside them and, for a pretrained language
   model, the bars of issue 30 (ft_cot above direct on those four; Coin Flip ft_cot >= 77.33, Last
   Letter ft_cot > 4.67, MultiArith ft_cot > 8.3) in summary.json's `bars`.

    python bench/finetune_cot_replay.py --data ../shared/data --out runs/replay [--quick]
    python bench/finetune_cot_replay.py --data ../shared/data --out runs/replay-smollm2 \
        --student pretrained:smollm2-135m
    python bench/finetune_cot_replay.py --data ../shared/data --out runs/replay-minilm \
        --student pretrained:minilm-seq2seq --layers 3

Student runs are resumable (rerun the same command) and summary.json is rewritten after each task.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import harness
from cotdistill.config import default_recipe
from cotdistill.curate import curate, teacher_answer
from cotdistill.pipeline import Run
from cotdistill.tasks.answers import is_correct, normalize_gold
from cotdistill.tasks.benchmarks import load_benchmark
from cotdistill.tasks.compat import paper_correct
from cotdistill.tasks.schema import choices_from_question
from cotdistill.teachers import build_prompting
from cotdistill.teachers.generate import generate_rationales
from cotdistill.teachers.replay import ReplayTeacher

TASKS = ["single_eq", "addsub", "svamp", "multiarith", "date_understanding", "last_letter_concatenation", "coin_flip"]
# The order pretrained students train in: the four tasks with bars first, the other three as time allows.
PRETRAINED_ORDER = ["coin_flip", "last_letter_concatenation", "multiarith", "date_understanding", "single_eq",
                    "addsub", "svamp"]
PAPER_TEACHER = {"single_eq": 81.50, "addsub": 76.71, "svamp": 64.20, "multiarith": 77.50,
                 "date_understanding": 68.29, "last_letter_concatenation": 57.00, "coin_flip": 90.60}
# Fine-tune-CoT students on text-davinci-002 rationales, no diverse reasoning (../shared/METHODS.md).
PAPER_GPT2 = {"coin_flip": 77.33, "last_letter_concatenation": 4.67, "multiarith": 8.3}
PAPER_FLAN_T5_SMALL = {"coin_flip": 100.0, "last_letter_concatenation": 35.3, "date_understanding": 80.2,
                       "multiarith": 8.3, "svamp": 5.7}
SCRATCH_TASKS = ["coin_flip", "last_letter_concatenation"]
# This project's earlier measurements on the same splits (README), printed beside a new student's:
# (direct, ft_cot) on the official test split.
EARLIER = {
    "MiniLM 3+3 (2026-11-22)": {"coin_flip": (44.67, 56.00), "last_letter_concatenation": (0.00, 0.00),
                                "multiarith": (6.11, 5.56), "single_eq": (3.29, 3.29), "addsub": (0.84, 4.20),
                                "svamp": (7.33, 3.00), "date_understanding": (12.61, 12.61)},
    "from scratch (preset:tiny)": {"coin_flip": (81.33, 46.00), "last_letter_concatenation": (2.67, 0.00)},
}
# Issue 30's bars for a pretrained language-model student: ft_cot accuracy above these.
LM_FT_COT_BARS = {"coin_flip": (">=", 77.33), "last_letter_concatenation": (">", 4.67), "multiarith": (">", 8.3)}
BAR_TASKS = ["coin_flip", "last_letter_concatenation", "multiarith", "date_understanding"]


def lm_bars(tasks: dict) -> dict:
    """{NAME: {value, bar, met}} for the tasks trained so far."""
    bars = {}
    for task in BAR_TASKS:
        st = tasks.get(task, {}).get("students")
        if not st:
            continue
        d, c = st["direct"]["accuracy"], st["ft_cot"]["accuracy"]
        bars[f"{task}: ft_cot > direct"] = harness.bar(round(c - d, 2), 0, c > d)
        if task in LM_FT_COT_BARS:
            op, bar = LM_FT_COT_BARS[task]
            bars[f"{task}: ft_cot {op} {bar}"] = harness.bar(c, bar, c >= bar if op == ">=" else c > bar)
    return bars


RELEASE_RENDERED = {"date_understanding"}  # tasks whose release renders questions unlike the benchmark files


def teacher_file(data: Path, task: str) -> Path:
    return data / "finetune-cot/teacher/text-davinci-002__zs_cot" / f"D_{task}.json"


def replay_records(data: Path, task: str) -> list[dict]:
    """Run every released question through stage 1 and stage 2 of the replay teacher."""
    from cotdistill.tasks.schema import Example

    teacher = ReplayTeacher(teacher_file(data, task))
    # Read the file itself: a question released twice shares one prompt in the teacher's index.
    raw = json.loads(teacher_file(data, task).read_text())["data"]
    kind = load_benchmark(task, data)[0].kind
    exs = []
    for key, samples in raw.items():
        s = samples[0]
        choices = choices_from_question(s["question"]) if kind.value == "choice" else None
        exs.append(Example(id=f"{task}-{key}", question=s["question"], answer=str(s["answer"]), kind=kind,
                           choices=choices, metadata={"index": int(key)}))
    cfg = harness.config({"teacher": {"backend": "replay", "path": str(teacher_file(data, task))}})
    recs = generate_rationales(exs, teacher, build_prompting(cfg.teacher, task))
    for r, e in zip(recs, exs):
        r["index"] = e.metadata["index"]
    return recs


def teacher_accuracy(task: str, recs: list[dict]) -> dict:
    paper = [paper_correct(task, r["answer_text"], r["answer"]) for r in recs]
    ours = [is_correct(teacher_answer(r), normalize_gold(r["answer"], r["kind"], r["choices"]), r["kind"]) for r in recs]
    dis = [{"index": r["index"], "completion": r["answer_text"], "gold": r["answer"], "paper": p, "default": o}
           for r, p, o in zip(recs, paper, ours) if p != o]
    n = len(recs)
    return {"questions": n, "teacher_accuracy": round(100 * sum(paper) / n, 2),
            "teacher_accuracy_default": round(100 * sum(ours) / n, 2), "paper_teacher": PAPER_TEACHER[task],
            "disagreements": len(dis), "disagreement_examples": dis[:10]}


def kept_counts(data: Path, task: str, recs: list[dict]) -> dict:
    train_idx = set(json.loads((data / f"finetune-cot/splits/{task}__default.json").read_text())["train"])
    kept, stats = curate([r for r in recs if r["index"] in train_idx])
    return {"train_questions": stats.questions, "kept": stats.kept, "dropped": dict(stats.dropped)}


def train_students(data: Path, out: Path, task: str, student: str, setup: dict, layers: int | None) -> dict:
    # Date Understanding's release shuffled the options: its questions come from the teacher file.
    source = {"source": "release", "path": str(teacher_file(data, task))} if task in RELEASE_RENDERED \
        else {"source": "benchmark"}
    cfg = harness.config({
        "out": str(out / "students" / task), "task": {**source, "name": task, "data_dir": str(data), "n_train": 0},
        "teacher": {"backend": "replay", "path": str(teacher_file(data, task))},
        "student": harness.student_section(student, layers), "methods": ["direct", "ft_cot"]}, setup)
    t0 = time.time()
    s = Run(cfg).run_all()
    keep = ("accuracy", "ci95", "train_pairs", "n", "steps", "best_step", "mean_generated_tokens", "no_answer")
    res = {m: {k: v for k, v in r.items() if k in keep} for m, r in s["methods"].items()}
    return {**res, "minutes": round((time.time() - t0) / 60, 1)}


def _fmt(x) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "-"


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "replay", student="preset:tiny", data=True, steps=None,
                        quick="smoke run: teacher figures plus 4-step students")
    ap.add_argument("--tasks", nargs="+", default=None, help=f"tasks that train students (default: {SCRATCH_TASKS} "
                    "for presets, all seven otherwise)")
    ap.add_argument("--epochs", type=float, default=None, help="passes over the training pairs instead of --steps")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores); 1 leaves a core "
                    "for another job")
    ap.add_argument("--preset", default=None, help=argparse.SUPPRESS)  # old spelling of --student preset:NAME
    args = harness.parse(ap, argv)
    if not teacher_file(args.data, "coin_flip").exists():
        print(f"no teacher files under {args.data}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    student = f"preset:{args.preset}" if args.preset else args.student
    scratch = student.startswith("preset:")
    language_model = default_recipe(student) == "pretrained_lm"
    if args.quick:  # 4 steps from scratch, or 2 steps of a 1-layer pretrained student; short answers
        args.steps, args.epochs = (4 if scratch else 2), None
        args.layers = None if scratch else 1
    tasks = args.tasks or (SCRATCH_TASKS if scratch else PRETRAINED_ORDER)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        print(f"unknown tasks {unknown}; choose from {TASKS}", file=sys.stderr)
        return 2
    if scratch:  # the from-scratch setting the README's first rows were measured with
        steps = args.steps or 1000
        train = {"max_steps": steps, "eval_every": max(10, steps // 6), "batch_size": 32,
                 "warmup_steps": min(50, steps // 4), "learning_rate": 0.002}
    else:
        train = {"max_steps": args.steps, "epochs": None} if args.steps else {}
    if args.epochs:
        train["epochs"] = args.epochs
    train["keep_checkpoints"] = False
    if args.threads:
        train["threads"] = args.threads
    setup: dict = {"train": train}
    if args.quick:  # a smoke run: 30 test questions, short answers; it checks that every part runs
        setup = harness.merge(setup, {"eval": {"max_new_tokens": 16}, "task": {"n_test_max": 30, "sample": "random"},
                                      "train": {"eval_every": 2, **({} if scratch else {"batch_size": 4})}})
    t0 = time.time()
    summary: dict = {"tasks": {}, "student_setup": {"student": student, "layers": args.layers, "setup": setup}}
    for task in TASKS:
        recs = replay_records(args.data, task)
        summary["tasks"][task] = {**teacher_accuracy(task, recs), **kept_counts(args.data, task, recs)}
    harness.write_summary(args.out, summary)
    for task in tasks:
        summary["tasks"][task]["students"] = train_students(args.data, args.out, task, student, setup, args.layers)
        summary["tasks"][task]["paper_gpt2_124m_ft_cot"] = PAPER_GPT2.get(task)
        summary["tasks"][task]["paper_flan_t5_small_ft_cot"] = PAPER_FLAN_T5_SMALL.get(task)
        if language_model:
            summary["bars"] = lm_bars(summary["tasks"])
        harness.write_summary(args.out, summary)  # a long run keeps what it finished

    print("\nTeacher accuracy (text-davinci-002 Zero-shot-CoT, all questions)")
    print(f"{'task':28} {'paper':>7} {'paper-mode':>10} {'default':>8} {'disagree':>8} {'train kept':>10}")
    for task, r in summary["tasks"].items():
        print(f"{task:28} {r['paper_teacher']:7.2f} {r['teacher_accuracy']:10.2f} {r['teacher_accuracy_default']:8.2f} "
              f"{r['disagreements']:8d} {r['kept']:>5}/{r['train_questions']:<4}")
    print(f"\nStudents ({student}{f', {args.layers} layers' if args.layers else ''}), official test split")
    earlier = {k: v for k, v in EARLIER.items() if not student.startswith("preset:") or "scratch" not in k}
    print(f"{'task':28} {'direct':>8} {'ft_cot':>8} {'steps d/c':>10} {'min':>5} {'paper GPT-2':>12} {'paper Flan-T5-s':>16}"
          + "".join(f"  {k + ' d/c':>32}" for k in earlier))
    for task in tasks:
        st = summary["tasks"][task]["students"]
        print(f"{task:28} {st['direct']['accuracy']:8.2f} {st['ft_cot']['accuracy']:8.2f} "
              f"{st['direct']['steps']:>4}/{st['ft_cot']['steps']:<5} {st['minutes']:5.1f} "
              f"{_fmt(PAPER_GPT2.get(task)):>12} {_fmt(PAPER_FLAN_T5_SMALL.get(task)):>16}"
              + "".join(f"  {' / '.join(_fmt(x) for x in rows.get(task, (None, None))):>32}" for rows in earlier.values()))
    harness.print_bars(summary.get("bars", {}))
    print(f"\n({time.time() - t0:.0f} s) -> {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
