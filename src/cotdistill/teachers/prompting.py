"""Prompting styles: Zero-shot-CoT in two stages (Kojima et al. 2022, as used by Fine-tune-CoT)
and few-shot-CoT from exemplars. Answer triggers depend on the answer kind."""
from __future__ import annotations

import re
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


_LAST_Q = re.compile(r"Q: (.*?)\nA:(.*)\Z", re.S)


def last_question(prompt: str) -> tuple[str, str] | None:
    """(question, text after `A:`) of the last `Q: ...\nA:` in a prompt, for teachers that answer
    from what they already know (the exact solver, the data set's own rationales)."""
    starts = [m.start() for m in re.finditer(r"(?:^|\n)Q: ", prompt)]
    m = _LAST_Q.match(prompt[starts[-1]:].lstrip("\n")) if starts else None
    return (m.group(1), m.group(2).strip()) if m else None


def known_reply(after: str, rationale: str, answer: str) -> str:
    """What a teacher that knows (rationale, answer) writes after `A:`: the rationale for
    Zero-shot-CoT stage 1, the answer for stage 2, both for few-shot-CoT."""
    if after == STEP_TRIGGER:
        return f" {rationale}"
    if after.startswith(STEP_TRIGGER):  # stage 2: rationale then the answer trigger
        return f" {answer}."
    return f" {rationale} The answer is {answer}."


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
    from ..io import read_json, read_jsonl

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


# -- answer-given rationale augmentation (the CoT Collection, Kim et al. 2023) -------------------
BLOCKS = ("[Instruction and Question]", "[Options]", "[Answer]", "[Rationale]")


class AnswerGiven:
    """The teacher sees the question, its options and the GOLD answer, in the CoT Collection's
    block format, after demonstrations in the same format, and writes only the rationale:
    `[Example k]` / `[Instruction and Question]` / `[Options]` / `[Answer]` / `[Rationale]`. One
    stage; generation stops at the next `[Example`. Curation then keeps a rationale only when the
    task's extractor reads the given answer from it and it reasons before stating it
    (curate.states_answer_only)."""

    name = "answer_given"
    two_stage = False
    stop: tuple[str, ...] = ("\n[Example", "\n\n\n")

    def __init__(self, demos: list[dict], instructions: str = ""):
        self.demos, self.instructions = demos, instructions

    @staticmethod
    def block(k: int, question: str, options: str, answer: str, rationale: str = "") -> str:
        return (f"[Example {k}]\n[Instruction and Question]\n{question}\n\n[Options]\n{options}\n\n"
                f"[Answer]\n{answer}\n\n[Rationale]\n{rationale}")

    def stage1(self, ex: Example) -> str:
        from ..tasks.answers import normalize_gold
        from ..tasks.schema import choice_letters

        demos = "\n\n\n\n".join(self.block(i + 1, d["question"], d["options"], d["answer"], d["rationale"])
                                for i, d in enumerate(self.demos))
        options = "\n".join(f"- ({l}) {c}" for l, c in zip(choice_letters(len(ex.choices)), ex.choices)) \
            if ex.choices else "Not Given"
        gold = normalize_gold(ex.answer, ex.kind, ex.choices) if ex.choices else ex.answer
        if ex.choices:
            gold = f"({gold}) {ex.choices[ord(gold) - ord('A')]}"
        head = f"{self.instructions}\n\n" if self.instructions else ""
        return f"{head}{demos}\n\n\n\n{self.block(len(self.demos) + 1, ex.question, options, gold)}"

    def stage2(self, ex: Example, rationale: str) -> str:  # pragma: no cover - single stage
        raise NotImplementedError("answer-given augmentation has a single stage")


def load_block_demos(path: str) -> tuple[str, list[dict]]:
    """(instructions, demonstrations) from a file in the CoT Collection's block format: optional
    instructions, then `[Example k]` blocks, each with `[Instruction and Question]`, `[Options]`
    (optional), `[Answer]` and `[Rationale]`. A last example whose answer and rationale are empty
    is the release's slot for the new item and is skipped."""
    import re
    from pathlib import Path

    from ..errors import DataError
    from ..io import read_text

    p = Path(path)
    text = read_text(p).replace("\r\n", "\n")
    parts = re.split(r"^\[Example \d+\]\s*$", text, flags=re.M)
    if len(parts) < 2:
        raise DataError(f"{p}: not in the block format: no `[Example 1]` line (each example needs the blocks "
                        f"{', '.join(BLOCKS)}; [Options] may be left out)")
    demos = []
    for k, body in enumerate(parts[1:], 1):
        fields: dict[str, str] = {}
        current = None
        for line in body.split("\n"):
            m = re.match(r"^(\[(?:Instruction and Question|Options|Answer|Rationale)\])\s*$", line)
            if m:
                current = m.group(1)
                if current in fields:
                    raise DataError(f"{p}: [Example {k}]: {current} appears twice")
                fields[current] = ""
            elif current:
                fields[current] += line + "\n"
        fields = {b: v.strip() for b, v in fields.items()}
        last = k == len(parts) - 1
        if last and not fields.get("[Answer]") and not fields.get("[Rationale]"):
            continue  # the empty slot for the item to augment
        missing = [b for b in BLOCKS if b != "[Options]" and not fields.get(b)]
        if missing:
            raise DataError(f"{p}: [Example {k}]: missing or empty {', '.join(missing)} (blocks: {', '.join(BLOCKS)}; "
                            f"[Options] may be left out)")
        demos.append({"question": fields["[Instruction and Question]"], "options": fields.get("[Options]") or "Not Given",
                      "answer": fields["[Answer]"], "rationale": fields["[Rationale]"]})
    if not demos:
        raise DataError(f"{p}: no complete [Example k] blocks")
    return parts[0].strip(), demos
