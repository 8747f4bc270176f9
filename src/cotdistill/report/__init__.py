"""The run report: OUT/report.md (the tables, the chart and three example predictions per method)
and OUT/report.html (everything, with a rationale browser: html.py)."""
from __future__ import annotations

from pathlib import Path

from .html import write_html
from .tables import (accuracy_figure, cell, classification_rows, classification_table, comparison_table, markdown,
                     method_columns, plot_accuracy, summary_table, task_rows, task_table)

__all__ = ["accuracy_figure", "cell", "classification_rows", "classification_table", "comparison_table", "markdown",
           "method_columns", "plot_accuracy", "summary_table", "task_rows", "task_table", "write_html", "write_report"]


def write_report(summary: dict, predictions: dict[str, list[dict]], out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    plot_accuracy(summary, out_dir / "accuracy.png")
    cur = summary.get("curation", {})
    lines = [
        f"# cotdistill report: {summary['task']}", "",
        f"Student `{summary.get('student')}`, teacher `{summary.get('teacher')}`, "
        f"{summary.get('n_train')} training / {summary.get('n_test')} test questions.", "",
        comparison_table(summary), "", "![accuracy](accuracy.png)", "",
    ]
    table = task_table(summary)
    if table:
        lines += ["## Per task", "", table, ""]
    table = classification_table(summary)
    if table:
        lines += ["## Classification", "", table, ""]
    if cur:
        lines += ["## Curation", "", f"Teacher accuracy {cur.get('teacher_accuracy')}% over {cur.get('samples')} "
                  f"samples; kept {cur.get('kept')} rationales for {cur.get('questions_with_a_kept_rationale')} "
                  f"of {cur.get('questions')} questions; dropped: {cur.get('dropped') or 'none'}.", ""]
    for m, preds in predictions.items():
        lines += [f"## {m}: example predictions", ""]
        for p in preds[:3]:
            mark = "right" if p["correct"] else "wrong"
            route = f", routed to {p['mode']} (P(post) {p['p_post']})" if p.get("mode") else ""
            step = (f", step I {p['intermediate']!r} (gold {p['gold_intermediate']!r})"
                    if p.get("intermediate") is not None else "")
            lines += [f"- Q: {p['question'][:500]}", f"  - generated: `{p['generation'][:300]}`",
                      f"  - prediction {p['prediction']!r}, gold {p['gold']!r} ({mark}{route}{step})"]
        lines.append("")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
