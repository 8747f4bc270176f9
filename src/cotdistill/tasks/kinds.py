"""Answer kinds and option letters: what the extractors (answers.py) and the example schema
(schema.py) both build on."""
from __future__ import annotations

from enum import Enum


class AnswerKind(str, Enum):
    number = "number"
    choice = "choice"  # multiple choice; gold is the letter, `choices` holds the option texts
    yes_no = "yes_no"
    text = "text"  # free text compared after normalisation
    label = "label"  # a class label, possibly a path such as "comp/graphics"
    math = "math"  # a LaTeX or plain expression ("\\frac{1}{2}", "2\\sqrt{3}"), compared by value (math-verify)


def choice_letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]
