"""Fine-tune-CoT's own answer-cleansing rules (itsnamgyu/reasoning-teacher, evaluator.py), kept
only to reproduce the paper's teacher figures. cotdistill's curation and evaluation use
`answers.extract`; docs/extraction.md explains where the two disagree and why ours is right.

Paper rule: the FIRST candidate in the stage-2 completion, where a candidate is
  numbers: any `-?\\d+(\\.\\d+)?` after removing commas;
  date (A-F) / shuffled objects (A-C) / aqua, csqa (A-E): ANY capital letter in range;
  yes/no: the words yes/no after stripping punctuation;
  last letters: the whole completion with quotes, periods and whitespace removed.
"""
from __future__ import annotations

import re

_LETTERS = {"date_understanding": "ABCDEF", "tracking_shuffled_objects": "ABC", "aqua": "ABCDE",
            "commonsense_qa": "ABCDE"}
_NUMBER_TASKS = {"gsm8k", "addsub", "multiarith", "svamp", "single_eq"}


def paper_candidates(task: str, text: str) -> list[str]:
    if task in _LETTERS:
        return re.findall(f"[{_LETTERS[task]}]", text)
    if task in _NUMBER_TASKS:
        return [str(float(x)) for x in re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))]
    if task in ("strategy_qa", "coin_flip"):
        words = re.sub(r"\"|'|\n|\.|\s|:|,", " ", text.lower()).split(" ")
        return [w for w in words if w in ("yes", "no")]
    if task == "last_letter_concatenation":
        return [re.sub(r"\"|'|\n|\.|\s", "", text)]
    raise ValueError(f"no paper answer rule for task {task!r}")


def paper_correct(task: str, completion: str, gold: str) -> bool:
    c = paper_candidates(task, completion)
    if not c:
        return False
    if task in _NUMBER_TASKS:
        return abs(float(c[0]) - float(gold.replace(",", ""))) <= 1e-6
    return c[0] == (gold.lower() if task == "strategy_qa" else gold)
