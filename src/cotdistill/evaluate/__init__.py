"""Evaluation: batched greedy generation with the KV cache, per-example predictions and
accuracy with a 95% confidence interval."""
from __future__ import annotations

import math
import time
from typing import Callable

from .. import hf
from ..methods.base import Method
from ..tasks.answers import is_correct, normalize_gold
from ..tasks.schema import Example


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
    """One record per example: question, rationale, prediction, gold, correct, tokens, seconds."""
    sources = [method.source(ex, seq2seq) for ex in examples]
    t0 = time.perf_counter()
    gens = hf.generate(model, tok, sources, seq2seq=seq2seq, max_new_tokens=max_new_tokens, temperature=0.0,
                       batch_size=batch_size, stop=method.stop(), progress=progress)
    wall = time.perf_counter() - t0
    out = []
    for ex, g in zip(examples, gens):
        parsed = method.parse(g.text, ex)
        gold = normalize_gold(ex.answer, ex.kind, ex.choices)
        out.append({
            "id": ex.id, "question": ex.question, "generation": g.text, "rationale": parsed.rationale,
            "prediction": parsed.answer, "gold": gold, "correct": is_correct(parsed.answer, gold, ex.kind),
            "generated_tokens": g.completion_tokens, "finish_reason": g.finish_reason,
        })
    for r in out:
        r["seconds"] = wall / max(1, len(out))
    return out


def summarize(preds: list[dict]) -> dict:
    n = len(preds)
    k = sum(p["correct"] for p in preds)
    lo, hi = wilson_interval(k, n)
    return {
        "n": n, "correct": k, "accuracy": round(100 * k / n, 2) if n else 0.0,
        "ci95": [round(100 * lo, 2), round(100 * hi, 2)],
        "mean_generated_tokens": round(sum(p["generated_tokens"] for p in preds) / n, 2) if n else 0.0,
        "no_answer": sum(p["prediction"] is None for p in preds),
        "truncated": sum(p["finish_reason"] == "length" for p in preds),
        "seconds_per_100": round(100 * sum(p["seconds"] for p in preds) / n, 3) if n else 0.0,
    }
