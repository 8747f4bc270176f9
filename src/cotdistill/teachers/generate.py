"""The generate stage: examples -> teacher rationale records (JSONL), n samples per question.

Each record keeps the raw stage-1 and stage-2 texts; answers are parsed later, in curation, so
unparseable output is data, not an exception."""
from __future__ import annotations

from typing import Callable, Iterable

from ..tasks.schema import Example
from .base import GenParams, Request, Teacher

ANSWER_IS = "The answer is"


def generate_rationales(
    examples: list[Example], teacher: Teacher, prompting, *, n_samples: int = 1, temperature: float = 0.0,
    max_tokens: int = 256, answer_max_tokens: int = 32, seed: int | None = 0,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Returns one record per (example, sample). Stage 2 runs only for two-stage prompting."""
    p1 = GenParams(temperature=temperature, max_tokens=max_tokens, seed=seed, stop=tuple(prompting.stop))
    # Stage 2 is a short, greedy read-out of the answer the rationale reached (as in Kojima et al.).
    p2 = GenParams(temperature=0.0, max_tokens=answer_max_tokens, seed=seed)
    pairs = [(ex, s) for ex in examples for s in range(n_samples)]
    stage1 = teacher.complete([Request(prompting.stage1(ex), p1, s) for ex, s in pairs], progress)
    stage2: Iterable = [None] * len(pairs)
    if prompting.two_stage:
        stage2 = teacher.complete(
            [Request(prompting.stage2(ex, c.text), p2, s) for (ex, s), c in zip(pairs, stage1)], progress
        )
    records = []
    for (ex, s), c1, c2 in zip(pairs, stage1, stage2):
        rationale, answer_text = c1.text.strip(), (c2.text if c2 else None)
        if c2 is None and ANSWER_IS in rationale:  # single stage: "... The answer is X."
            rationale, tail = rationale.rsplit(ANSWER_IS, 1)
            rationale, answer_text = rationale.strip(), tail
        records.append({
            "id": ex.id, "sample": s, "question": ex.question, "answer": ex.answer, "kind": ex.kind.value,
            "choices": ex.choices, "rationale": rationale, "answer_text": answer_text,
            "prompt_style": getattr(prompting, "name", None),
            "finish_reason": c1.finish_reason,
            "usage": {"prompt_tokens": _sum(c1.prompt_tokens, c2 and c2.prompt_tokens),
                      "completion_tokens": _sum(c1.completion_tokens, c2 and c2.completion_tokens)},
        })
    return records


def _sum(a, b):
    return None if a is None and b is None else (a or 0) + (b or 0)


def n_requests(n_examples: int, n_samples: int, two_stage: bool) -> int:
    return n_examples * n_samples * (2 if two_stage else 1)
