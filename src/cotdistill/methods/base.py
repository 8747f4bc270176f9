"""The method contract: how curated rationales become training pairs, what the student is
prompted with at inference, and how an answer is read from what it generates.

A method is mostly pure functions over text. The training loop, generation and evaluation are
shared by every method; a method that needs more (several targets per question, a perception
module, segment-by-segment generation) overrides `train_pairs` / `predict` rather than copying
the loop.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from ..tasks.answers import extract, normalize_gold
from ..tasks.schema import Example

SEP = "-->"  # Fine-tune-CoT's answer separator
PROMPT_END = " ###"  # Fine-tune-CoT's decoder-only prompt terminator


@dataclass(frozen=True)
class Pair:
    """One training sequence: the student reads `source` and learns `target` (loss on target only).
    `weight` scales this pair's loss (multi-task methods)."""

    source: str
    target: str
    weight: float = 1.0


@dataclass
class Parsed:
    answer: str | None
    rationale: str | None


class Method(abc.ABC):
    name: ClassVar[str]
    uses_rationales: ClassVar[bool]
    paper: ClassVar[str] = ""

    def gold(self, ex: Example) -> str:
        """The answer as the student writes it: the normalised gold (e.g. "39", "B", "yes")."""
        return normalize_gold(ex.answer, ex.kind, ex.choices)

    def source(self, ex: Example, seq2seq: bool) -> str:
        """Decoder-only: `{q} ###`; encoder-decoder: `{q}`."""
        return ex.question if seq2seq else f"{ex.question}{PROMPT_END}"

    def _target(self, body: str, seq2seq: bool) -> str:
        return body if seq2seq else f" {body}"

    @abc.abstractmethod
    def train_pairs(self, ex: Example, rationales: list[str], seq2seq: bool) -> list[Pair]:
        """Training pairs for one question from its kept rationales (maybe none)."""

    @abc.abstractmethod
    def parse(self, text: str, ex: Example) -> Parsed:
        """Read the answer (and rationale) out of the student's generation."""

    def stop(self) -> tuple[str, ...]:
        """Strings that end generation early (besides end-of-sequence)."""
        return ()


def answer_after_separator(text: str, ex: Example) -> str | None:
    """First answer candidate after the separator; if the student never wrote the separator,
    fall back to the last candidate anywhere in its text."""
    if SEP in text:
        got = extract(text.split(SEP, 1)[1], ex.kind, ex.choices, position="first")
        if got is not None:
            return got
    return extract(text, ex.kind, ex.choices, position="last")
