"""Prompting styles: Zero-shot-CoT in two stages (Kojima et al. 2022, as used by Fine-tune-CoT)
and few-shot-CoT from exemplars. Answer triggers depend on the answer kind."""
from __future__ import annotations

from dataclasses import dataclass

from ..tasks.schema import AnswerKind, Example, choice_letters

STEP_TRIGGER = "Let's think step by step."


def answer_trigger(ex: Example) -> str:
    """Kojima et al.'s task-specific stage-2 triggers."""
    if ex.kind is AnswerKind.number:
        return "Therefore, the answer (arabic numerals) is"
    if ex.kind is AnswerKind.choice and ex.choices:
        letters = choice_letters(len(ex.choices))
        return f"Therefore, among {letters[0]} through {letters[-1]}, the answer is"
    if ex.kind is AnswerKind.yes_no:
        return "Therefore, the answer (Yes or No) is"
    return "Therefore, the answer is"


@dataclass(frozen=True)
class Exemplar:
    question: str
    rationale: str
    answer: str


class ZeroShotCoT:
    """Stage 1 `Q: {q}\\nA: Let's think step by step.` -> rationale r; stage 2 = stage 1 + r +
    `\\n` + answer trigger -> short answer."""

    name = "zero_shot_cot"
    two_stage = True
    stop: tuple[str, ...] = ()

    def __init__(self, trigger: str | None = None):
        self.trigger = trigger  # None: the answer kind's trigger

    def stage1(self, ex: Example) -> str:
        return f"Q: {ex.question}\nA: {STEP_TRIGGER}"

    def stage2(self, ex: Example, rationale: str) -> str:
        return f"{self.stage1(ex)}{rationale}\n{self.trigger or answer_trigger(ex)}"


class FewShotCoT:
    """Exemplars rendered as `Q: {q}\nA: {r} The answer is {a}.` lines, then `Q: {q}\nA:`; the
    teacher writes the rationale and the answer in one go, so there is no second stage."""

    name = "few_shot_cot"
    two_stage = False
    stop: tuple[str, ...] = ("\nQ:",)  # the teacher would go on to invent the next exemplar

    def __init__(self, prefix: str):
        self.prefix = prefix.rstrip("\n")

    @classmethod
    def from_exemplars(cls, exemplars: list[Exemplar]) -> "FewShotCoT":
        return cls("\n".join(f"Q: {e.question}\nA: {e.rationale} The answer is {e.answer}." for e in exemplars))

    def stage1(self, ex: Example) -> str:
        return f"{self.prefix}\n\nQ: {ex.question}\nA:"

    def stage2(self, ex: Example, rationale: str) -> str:  # pragma: no cover - single stage
        raise NotImplementedError("few-shot-CoT has a single stage")


def load_few_shot(path: str, task: str) -> FewShotCoT:
    """Exemplars from Fine-tune-CoT's few_shot_cot_prompts.json ({task: {"prompt": text}}) or from a
    JSON list / JSONL of {question, rationale, answer}."""
    from pathlib import Path

    from ..errors import DataError
    from ..tasks.files import read_json, read_jsonl

    p = Path(path)
    data = [r for _, r in read_jsonl(p)] if p.suffix == ".jsonl" else read_json(p)
    if isinstance(data, dict):
        if task not in data:
            raise DataError(f"{p}: no exemplars for task {task!r}; it has {sorted(data)}")
        if not isinstance(data[task], dict) or "prompt" not in data[task]:
            raise DataError(f"{p}: entry {task!r} needs a 'prompt' field")
        return FewShotCoT(data[task]["prompt"])
    out = []
    for i, d in enumerate(data):
        try:
            out.append(Exemplar(d["question"], d["rationale"], str(d["answer"])))
        except (KeyError, TypeError):
            raise DataError(f"{p}: exemplar {i + 1} needs fields 'question', 'rationale', 'answer'") from None
    if not out:
        raise DataError(f"{p}: no exemplars")
    return FewShotCoT.from_exemplars(out)
