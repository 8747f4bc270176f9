"""Unseen-task evaluation (the CoT Collection, METHODS.md §3): a trained student answers BIG-bench
tasks it never saw, zero-shot and after few-shot adaptation on k examples of each task, with a
BIG-Bench-Hard style report (accuracy per task, chance level, the average).

Per task, the examples are shuffled once with `seed`; the first `n_eval` are the evaluation
questions for every setting, and the k-shot adaptation trains on the first k of the rest (so the
16 examples are among the 64). `reserve` examples (at least the largest k) are always held back
for adaptation, so a small task's evaluation questions do not depend on `shots`: a zero-shot run
and a later `0 16 64` run answer the same questions, and the later one reuses the zero-shot run.
Zero-shot evaluates the student as it is. k-shot continues training a copy of it on those k
examples (every weight, or LoRA adapters with `student.lora`) with `adapt_method`'s pairs, then
evaluates it the same way as zero-shot. BIG-bench carries no rationales, so the default
adaptation method is `cot_tuning_direct` (`{q}` -> `[ANSWER] {a}`) for every student: a CoT-tuned
student still answers by writing its rationale and scoring the options. With a teacher that writes rationales (e.g. `teacher.prompt: answer_given` on an
OpenAI-compatible server), `adapt_method: cot_tuning` adapts on rationales instead.

Every run lands under `out/TASK/k{K}/`, a normal run folder (resumable; reruns reuse finished
training and evaluations), and `out/unseen_summary.json` / `out/unseen_report.md` hold the table.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError, DataError
from .io import write_json

SUMMARY = "unseen_summary.json"
REPORT = "unseen_report.md"


def chance(examples) -> float:
    """Expected accuracy of a uniform guess among the options (0 for free-form questions), in %."""
    return round(100 * sum(1 / len(e.choices) if e.choices else 0.0 for e in examples) / max(1, len(examples)), 2)


def task_name(path: str | Path) -> str:
    p = Path(path)
    return p.parent.name if p.name == "task.json" else p.name


def evaluate_unseen(student: str, tasks: list[str | Path], out: str | Path, *, method: str = "cot_tuning",
                    adapt_method: str = "cot_tuning_direct", shots: list[int] = (0, 16, 64), n_eval: int = 100,
                    reserve: int = 64, seed: int = 0, overrides: list[str] = (), reporter=None) -> dict:
    """Evaluates `student` (a saved model folder) on each BIG-bench task; returns and writes the summary."""
    from .config import load_config
    from .methods import needs_rationales
    from .pipeline import Run

    out = Path(out)
    if not Path(student).is_dir():
        raise ConfigError(f"--student {student}: not a folder (a saved student, e.g. runs/x/cot_tuning/model)")
    names = [task_name(t) for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--tasks: {twice} named twice")
    shots = sorted(set(shots))
    if any(k < 0 for k in shots) or reserve < 0:
        raise ConfigError(f"--shots {shots} / --reserve {reserve}: a number of examples is never negative")
    per_task: dict[str, dict] = {}
    for path, name in zip(tasks, names):
        from .tasks.bigbench import load_bigbench

        size = len(load_bigbench(path))
        held = max(reserve, *shots)
        n_test = min(n_eval, size - held - 1)
        if n_test < 10:
            raise DataError(f"{path}: {size} examples, too few for {held} adaptation examples (--reserve, or the "
                            f"largest --shots) and at least 10 evaluation questions; lower them or leave this task out")
        row: dict = {"n": n_test, "examples": size, "reserve": held}
        for k in shots:
            cfg = load_config(None, [
                "task.source=bigbench", f"task.path={path}", f"task.n_test={n_test}", f"task.n_train={max(1, k)}",
                f"task.seed={seed}", f"student.model={student}", f"methods=[{adapt_method}]",
                "train.val_fraction=0", f"out={out / name / f'k{k}'}", *overrides])
            run = Run(cfg, reporter)
            run.preflight(("data", "train") if k else ("data",))
            train, test = run.data()
            if k:
                if len(train) < k:
                    raise DataError(f"{path}: {len(train)} adaptation examples, fewer than k={k}")
                curated = run.curate(run.generate(train)) if needs_rationales([adapt_method]) else []
                run.train(adapt_method, train, curated)
                model_dir = run.folder.model(adapt_method)
            else:
                model_dir = Path(student)
            _, metrics = run.evaluate(method, test, model_dir, reuse=True)
            key = "zero_shot" if k == 0 else f"k{k}"
            row[key], row[f"{key}_correct"] = metrics["accuracy"], metrics["correct"]
            row.setdefault("chance", chance(test))
        per_task[name] = row
    summary = _summarize(per_task, shots, student, method, adapt_method, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SUMMARY, summary)
    (out / REPORT).write_text(report(summary))
    return summary


def _summarize(per_task: dict, shots, student, method, adapt_method, seed) -> dict:
    keys = ["zero_shot" if k == 0 else f"k{k}" for k in shots]
    mean = {k: round(sum(r[k] for r in per_task.values()) / len(per_task), 2) for k in keys}
    n = sum(r["n"] for r in per_task.values())
    pooled = {k: round(100 * sum(r[f"{k}_correct"] for r in per_task.values()) / n, 2) for k in keys}
    ci = {k: [round(100 * x, 2) for x in task_mean_interval([(r[f"{k}_correct"], r["n"]) for r in per_task.values()])]
          for k in keys}
    return {**mean, "chance": round(sum(r["chance"] for r in per_task.values()) / len(per_task), 2),
            "ci95": ci, "pooled": pooled, "questions": n, "per_task": per_task, "settings": keys,
            "setup": {"student": str(student), "method": method, "adapt_method": adapt_method, "seed": seed}}


def task_mean_interval(counts: list[tuple[int, int]], z: float = 1.96) -> tuple[float, float]:
    """95% interval of the unweighted mean of per-task accuracies ((correct, n) per task), the
    BIG-Bench-Hard average. Tasks are independent samples, so the variances add, each divided by
    the number of tasks squared; each task's variance uses the Agresti-Coull estimate (2 successes
    and 2 failures added), so a task at 0% or 100% still counts. The pooled Wilson interval is only
    right for this mean when every task has the same n."""
    t = len(counts)
    mean = sum(k / n for k, n in counts) / t
    var = sum(((k + 2) / (n + 4)) * (1 - (k + 2) / (n + 4)) / (n + 4) for k, n in counts) / (t * t)
    half = z * var ** 0.5
    return max(0.0, mean - half), min(1.0, mean + half)


def report(summary: dict) -> str:
    keys = summary["settings"]
    head = " | ".join(k.replace("_", "-") for k in keys)
    lines = [f"# Unseen tasks: {summary['setup']['student']}", "",
             f"Answers with `{summary['setup']['method']}`; k-shot adaptation trains `{summary['setup']['adapt_method']}` "
             f"pairs. Accuracy (%) on each task's evaluation questions.", "",
             f"| task | n | chance | {head} |", "|---|---|---|" + "---|" * len(keys)]
    for name, r in sorted(summary["per_task"].items()):
        lines.append(f"| {name} | {r['n']} | {r['chance']:.1f} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |")
    lines.append(f"| **average** | | {summary['chance']:.1f} | " + " | ".join(f"**{summary[k]:.2f}**" for k in keys) + " |")
    lines.append(f"| 95% CI of the average ({summary['questions']} answers) | | | " +
                 " | ".join(f"{summary['ci95'][k][0]:.1f}-{summary['ci95'][k][1]:.1f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def load_summary(out: str | Path) -> dict:
    return json.loads((Path(out) / SUMMARY).read_text())
