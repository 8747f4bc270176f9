"""FLAN CoT human rationales (google-research/FLAN, flan/v2/cot_data): `question \\t answer \\t
rationale` per line, newlines written as the two characters `\\n`, for seven task families.

Each family becomes the benchmark `flan_cot_FAMILY` (e.g. `flan_cot_strategyqa`), with the
human rationale in `metadata.rationale` for the `dataset` teacher. Kinds follow the answers:
yes/no where the answer is yes or no, a choice where the question lists options (the gold
becomes the option's letter; ECQA and Sense-Making answer with the option's text or
"Sentence A"), a number otherwise (GSM8K). The release has no test split: every 20th line (line
20, 40, ...) is the test split, the rest train, so the split is fixed and documented.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from .schema import Example, choice_letters, format_choices

FOLDER = "flan-cot"
FAMILIES = ("aqua", "creak", "ecqa", "gsm8k", "qasc", "sensemaking", "strategyqa")
TEST_EVERY = 20
_OPTION = re.compile(r"^-?\s*(?:\(([A-Z])\)\s*)?(.+?)\s*$")


def load_flan_cot(family: str, root: Path, split: str) -> list[Example]:
    path = Path(root) / FOLDER / f"{family}_train.tsv"
    if not path.exists():
        raise DataError(f"{path}: not found (FLAN CoT family {family!r}; families: {', '.join(FAMILIES)})")
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or (lineno % TEST_EVERY == 0) != (split == "test"):
                continue
            out.append(_example(family, lineno, line.rstrip("\n"), f"{path}:{lineno}"))
    return out


def _example(family: str, lineno: int, line: str, where: str) -> Example:
    parts = line.split("\t")
    if len(parts) != 3:
        raise DataError(f"{where}: expected 3 tab-separated fields (question, answer, rationale), got {len(parts)}")
    question, answer, rationale = (p.replace("\\n", "\n").strip() for p in parts)
    stem, options = _split_options(question)
    meta = {"task": f"flan_cot_{family}", "index": lineno, "rationale": rationale}
    if answer.lower() in ("yes", "no") and (not options or {o.lower() for o in options} <= {"yes", "no"}):
        return Example.parse({"id": f"flan_cot_{family}-{lineno}", "question": stem, "answer": answer.lower(),
                              "kind": "yes_no", "metadata": meta}, where)
    if options:
        gold = _gold_letter(answer, options, where)
        return Example.parse({"id": f"flan_cot_{family}-{lineno}", "question": f"{stem} {format_choices(options)}",
                              "answer": gold, "kind": "choice", "choices": options, "metadata": meta}, where)
    return Example.parse({"id": f"flan_cot_{family}-{lineno}", "question": stem, "answer": answer, "kind": "number",
                          "metadata": meta}, where)


def _split_options(question: str) -> tuple[str, list[str]]:
    """('stem', [option texts]) for a question ending in 'Options:' and one option per line."""
    head, sep, tail = question.partition("\nOptions:")
    if not sep:
        return question, []
    options = []
    for raw in tail.strip().splitlines():
        m = _OPTION.match(raw.strip())
        if m and m.group(2):
            options.append(m.group(2))
    return head.strip(), options


def _gold_letter(answer: str, options: list[str], where: str) -> str:
    letters = choice_letters(len(options))
    m = re.fullmatch(r"\(?([A-Z])\)?", answer.strip())
    if m and m.group(1) in letters:  # AQuA, QASC: "(C)"
        return m.group(1)
    for letter, opt in zip(letters, options):  # ECQA: the option's text; Sense-Making: "Sentence A"
        if opt.strip().lower() == answer.strip().lower() or opt.lower().startswith(answer.strip().lower() + ":"):
            return letter
    raise DataError(f"{where}: field 'answer': {answer!r} is none of the options {options}")
