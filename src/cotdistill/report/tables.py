"""The figures of a run as tables (for the CLI, report.md and report.html) and its accuracy chart."""
from __future__ import annotations

from pathlib import Path


def plot_accuracy(summary: dict, path: Path) -> None:
    """Accuracy with 95% CI beside mean generated tokens per question: what each method buys and costs."""
    import matplotlib.pyplot as plt

    fig = accuracy_figure(summary)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def accuracy_figure(summary: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    acc = [summary["methods"][m]["accuracy"] for m in methods]
    lo = [a - summary["methods"][m]["ci95"][0] for a, m in zip(acc, methods)]
    hi = [summary["methods"][m]["ci95"][1] - a for a, m in zip(acc, methods)]
    toks = [summary["methods"][m]["mean_generated_tokens"] for m in methods]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(1.8 * len(methods) + 4, 3.4))
    ax.bar(methods, acc, yerr=[lo, hi], capsize=6, color="#4C72B0")
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{summary['task']}: accuracy with 95% CI")
    for i, (a, up) in enumerate(zip(acc, hi)):
        ax.text(i + 0.08, a + up + 1.5, f"{a:.1f}", ha="left")
    bx.bar(methods, toks, color="#DD8452")
    bx.set_ylabel("generated tokens per question")
    bx.set_title("inference cost")
    for i, t in enumerate(toks):
        bx.text(i, t, f"{t:.0f}", ha="center", va="bottom")
    for a in (ax, bx):
        a.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return fig


def method_columns(methods) -> dict[str, tuple[str, str]]:
    """The columns the summary's methods declare for their own figures ({key: (heading, format)})."""
    from ..methods import METHODS

    cols: dict[str, tuple[str, str]] = {}
    for m in methods:
        if m in METHODS:  # a summary may name a method this version no longer has
            cols.update(METHODS.get(m).columns)
    return cols


def cell(value, fmt: str = "") -> str:
    if value is None:
        return "-"
    if fmt == "share":
        return f"{100 * value:.1f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def summary_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """(headings, rows) comparing the methods of a summary: what `cotdistill run` prints and report.md shows."""
    methods = summary["methods"]
    f1 = any("macro_f1" in r for r in methods.values())  # classifying (masked-LM) methods
    own = {k: c for k, c in method_columns(methods).items() if any(k in r for r in methods.values())}
    heads = ["method", "accuracy %", "95% CI", *(["macro-F1 %"] if f1 else []), "generated tokens", "s / 100 questions",
             *(h for h, _ in own.values()), "train pairs", "steps"]
    rows = []
    for m, r in methods.items():
        rows.append([m, f"{r['accuracy']:.2f}", f"{r['ci95'][0]:.1f}-{r['ci95'][1]:.1f}",
                     *([cell(r.get("macro_f1"))] if f1 else []), f"{r['mean_generated_tokens']:.1f}",
                     f"{r['seconds_per_100']:.2f}", *(cell(r.get(k), fmt) for k, (_, fmt) in own.items()),
                     cell(r.get("train_pairs")), cell(r.get("steps"))])
    return heads, rows


def markdown(heads: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def comparison_table(summary: dict) -> str:
    return markdown(*summary_table(summary))


def classification_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Classifying (masked-LM) methods: macro-F1 and the intermediate step; no rows without them."""
    keys = ("macro_f1", "semeval_official_f1", "intermediate_accuracy", "step1_intermediate_accuracy",
            "intermediate_macro_f1")
    heads = ["method", "macro-F1 (%)", "SemEval official F1 (%)", "intermediate accuracy (%)",
             "step I's own, before rectification (%)", "intermediate macro-F1 (%)"]
    rows = [[m, *(cell(r.get(k)) for k in keys)] for m, r in summary["methods"].items() if "macro_f1" in r]
    return heads, rows


def classification_table(summary: dict) -> str:
    heads, rows = classification_rows(summary)
    return markdown(heads, rows) if rows else ""


def task_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Task mixtures: accuracy per task (rows) and method (columns), and the mean over tasks."""
    methods = [m for m, r in summary["methods"].items() if r.get("by_task")]
    if not methods:
        return [], []
    tasks = sorted({t for m in methods for t in summary["methods"][m]["by_task"]})
    rows = []
    for t in tasks:
        cells = []
        for m in methods:
            r = summary["methods"][m]["by_task"].get(t)
            cells.append(f"{r['accuracy']:.2f} ({r['ci95'][0]:.1f}-{r['ci95'][1]:.1f})" if r else "-")
        n = next(summary["methods"][m]["by_task"][t]["n"] for m in methods if t in summary["methods"][m]["by_task"])
        rows.append([t, str(n), *cells])
    rows.append(["mean over tasks", "", *(f"{summary['methods'][m]['task_mean_accuracy']:.2f}" for m in methods)])
    return ["task", "n", *(f"{m} (95% CI)" for m in methods)], rows


def task_table(summary: dict) -> str:
    heads, rows = task_rows(summary)
    if not rows:
        return ""
    rows[-1] = ["**mean over tasks**", *rows[-1][1:]]
    return markdown(heads, rows)
