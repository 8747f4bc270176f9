"""Questions as a released Fine-tune-CoT teacher file (`D_{task}.json`) rendered them.

The release rendered some benchmarks its own way: Date Understanding's options are shuffled and
written "\\nWhich choice is true? Answer choices: (A) x, (B) y." where the benchmark's file order
gives "Answer Choices: (A) y (B) x". A replayed teacher only answers the prompts it was given, and
its rationales name letters of that order, so replaying such a task needs the release's questions
(`task.source: release`), under the benchmark's official split.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..io import read_json
from .schema import Example

_OPTIONS = re.compile(r"Answer choices:\s*(.*?)\.?\s*$", re.S | re.I)
_OPTION = re.compile(r"\(([A-Z])\)\s*(.*?)(?=,\s*\([A-Z]\)|$)", re.S)


def release_choices(question: str, where: str) -> list[str]:
    m = _OPTIONS.search(question)
    found = _OPTION.findall(m.group(1)) if m else []
    letters = [letter for letter, _ in found]
    if not found or letters != [chr(ord("A") + i) for i in range(len(found))]:
        raise DataError(f"{where}: a choice question without options '(A) ..., (B) ...' after 'Answer choices:'")
    return [text.strip() for _, text in found]


def load_release(name: str, path: str | Path, data_dir: str | Path, split: str) -> list[Example]:
    """The release's questions and gold answers for benchmark `name`, ids and split as the benchmark's."""
    from .benchmarks import load_benchmark, official_split, select_split

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        raise DataError(f"{path}: not a Fine-tune-CoT teacher file (no 'data' object)")
    kind = load_benchmark(name, data_dir, "test")[0].kind  # the benchmark's answer kind
    out = []
    for key, samples in data["data"].items():
        where = f"{path} data[{key!r}]"
        if not key.isdigit() or not isinstance(samples, list) or not samples:
            raise DataError(f"{where}: expected a sample index with a list of completions")
        s = samples[0]
        for f in ("question", "answer"):
            if f not in s:
                raise DataError(f"{where}[0]: missing field {f!r}")
        i = int(key)
        choices = release_choices(s["question"], where) if kind.value == "choice" else None
        out.append(Example.parse({"id": f"{name}-{i}", "question": s["question"].strip(), "answer": str(s["answer"]),
                                  "kind": kind.value, "choices": choices, "metadata": {"task": name, "index": i}}, where))
    return select_split(out, official_split(name, data_dir)[split], f"{path.name} {split}")
