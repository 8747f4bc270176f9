"""The example schema shared by every stage."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import DataError
from .answers import gold_problem
from .kinds import AnswerKind, choice_letters

__all__ = ["AnswerKind", "Example", "choice_letters", "choices_from_question", "format_choices"]


class Example(BaseModel):
    """One question with its gold answer. `metadata` carries task-specific extras (the exact
    rationale of a synthetic task, the source file and index of a benchmark item...)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    question: str = Field(min_length=1)
    answer: str
    kind: AnswerKind
    choices: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, obj: Any, where: str) -> "Example":
        """Validate one record, naming `where` (file:line) and the field in the error."""
        try:
            ex = cls.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "<record>"
            raise DataError(f"{where}: field {field!r}: {err['msg']}") from None
        problem = gold_problem(ex.answer, ex.kind, ex.choices)
        if problem:
            raise DataError(f"{where}: field 'answer': {problem} (task kind {ex.kind.value!r})")
        return ex


def format_choices(choices: list[str]) -> str:
    """Render options the way the Zero-shot-CoT benchmarks do: 'Answer Choices: (A) x (B) y'."""
    return "Answer Choices: " + " ".join(f"({l}) {c}" for l, c in zip(choice_letters(len(choices)), choices))


def choices_from_question(question: str) -> list[str] | None:
    """Option texts embedded in a question ("Answer choices: (A) x, (B) y."), for data sets whose
    records carry no separate option list."""
    import re

    parts = re.split(r"\(([A-Z])\)\s*", question)
    if len(parts) < 5 or parts[1] != "A":
        return None
    opts = [p.strip().rstrip(",.").strip() for p in parts[2::2]]
    return opts if all(opts) else None
