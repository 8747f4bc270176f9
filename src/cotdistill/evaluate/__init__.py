"""Evaluation: batched greedy generation with the KV cache, per-example predictions and
accuracy with a 95% confidence interval."""
from __future__ import annotations

import logging
import math
from typing import Callable

from .. import hf
from ..methods.base import Method, Output, Parsed
from ..tasks.answers import abstains, is_correct, normalize_gold
from ..tasks.mixture import TAG
from ..tasks.schema import Example

log = logging.getLogger(__name__)
TOO_LONG = hf.TOO_LONG


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (sane at 0% and 100%, unlike Wald)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def predict(
    method: Method, model, tok, seq2seq: bool, examples: list[Example], *, max_new_tokens: int = 256,
    batch_size: int = 128, progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """One record per example: question, generation, rationale, prediction, gold, correct, generated
    tokens, seconds (this question's share of its batch's wall time), plus the method's own fields
    (adaptive: mode, p_post)."""
    limit = hf.input_limit(model, tok)
    too_long = overlong(method, tok, seq2seq, examples, limit)
    if too_long:
        log.warning("%d of %d questions are longer than the student's input limit (%d tokens): scored wrong, "
                    "not answered (finish_reason 'too_long' in the predictions)", len(too_long), len(examples), limit)
    fit = [e for i, e in enumerate(examples) if i not in too_long]
    outs = iter(method.predict(model, tok, seq2seq, fit, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               progress=progress) if fit else [])
    outs = [_unread() if i in too_long else next(outs) for i in range(len(examples))]
    records = []
    for ex, o in zip(examples, outs):
        g, parsed = o.generated, o.parsed
        gold = normalize_gold(ex.answer, ex.kind, ex.choices)
        task = {"task": ex.metadata[TAG]} if TAG in ex.metadata else {}  # mixtures: per-task figures
        records.append({
            **task, "id": ex.id, "question": ex.question, "generation": g.text, "rationale": parsed.rationale,
            "prediction": parsed.answer, "gold": gold, "correct": is_correct(parsed.answer, gold, ex.kind),
            "abstained": parsed.answer is None and abstains(g.text),
            "generated_tokens": o.generated_tokens, "finish_reason": g.finish_reason,
            "seconds": round(o.seconds if o.seconds is not None else g.duration_s, 6), **o.extra,
        })
    return records


def overlong(method: Method, tok, seq2seq: bool, examples: list[Example], limit: int | None) -> set[int]:
    """Indices of the questions whose prompt the student cannot read (generating methods; the
    masked-LM methods fit their inputs themselves). Counted and scored wrong rather than failing
    the whole evaluation: a BIG-bench story may be longer than a BERT student's 512 positions."""
    if limit is None or method.student_kind != "generative":
        return set()
    lengths = hf.prompt_lengths(tok, [method.source(e, seq2seq) for e in examples], seq2seq)
    return {i for i, n in enumerate(lengths) if n > limit}


def _unread() -> Output:
    return Output(hf.Generated("", TOO_LONG, 0, 0, 0.0), Parsed(None, None))


def score(method: Method, preds: list[dict]) -> dict:
    """metrics.json of one method: accuracy and the figures every method has, and the method's own."""
    return {**summarize(preds), **method.metrics(preds)}


def summarize(preds: list[dict]) -> dict:
    n = len(preds)
    k = sum(p["correct"] for p in preds)
    lo, hi = wilson_interval(k, n)
    return {
        "n": n, "correct": k, "accuracy": round(100 * k / n, 2) if n else 0.0,
        "ci95": [round(100 * lo, 2), round(100 * hi, 2)],
        "mean_generated_tokens": round(sum(p["generated_tokens"] for p in preds) / n, 2) if n else 0.0,
        "no_answer": sum(p["prediction"] is None for p in preds),
        "abstained": sum(bool(p.get("abstained")) for p in preds),  # part of no_answer: the student hedged
        "truncated": sum(p["finish_reason"] == "length" for p in preds),
        "too_long": sum(p["finish_reason"] == TOO_LONG for p in preds),  # part of no_answer: never read
        "seconds_per_100": round(100 * sum(p["seconds"] for p in preds) / n, 3) if n else 0.0,
        **_by_task(preds),
    }


def _by_task(preds: list[dict]) -> dict:
    """Task mixtures: accuracy with its 95% CI per task, and the unweighted mean over tasks."""
    tasks = sorted({p["task"] for p in preds if p.get("task")})
    if not tasks:
        return {}
    out: dict = {}
    for t in tasks:
        sel = [p for p in preds if p.get("task") == t]
        k = sum(p["correct"] for p in sel)
        lo, hi = wilson_interval(k, len(sel))
        out[t] = {"n": len(sel), "accuracy": round(100 * k / len(sel), 2), "ci95": [round(100 * lo, 2), round(100 * hi, 2)]}
    return {"by_task": out, "task_mean_accuracy": round(sum(v["accuracy"] for v in out.values()) / len(out), 2)}
