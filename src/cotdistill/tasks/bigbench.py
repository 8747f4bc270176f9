"""BIG-bench JSON tasks (the tasks behind BIG-Bench-Hard, or any task directory a user points at).

A task is a `task.json` with `examples`: multiple choice (`target_scores`: option -> score, the
best-scored option is gold) or free-form (`target`: a string or a list of accepted strings).
`task_prefix` (or the older `prefix`) and `example_input_prefix` are kept in the question, the
options are appended in the `Answer Choices: (A) .. (B) ..` form the reasoning benchmarks use,
in an order shuffled per example (seeded by the example's id, so every run sees the same order):
task files often list the gold option first (date_understanding in 364 of 369 examples,
temporal_sequences in all 1,000), and in file order "pick (A)" would score 99% and a few-shot
adaptation would learn the position, not the task. `shuffle_choices=False` keeps the file's order.
A folder whose `task.json` has no examples is a task with subtasks (`logical_deduction/
three_objects`...): every subtask's examples are loaded, each tagged `metadata.subtask`.
A multiple-choice example with more than 26 options (no letters past Z) becomes free form with
its best option as target. Free-form tasks whose every example has a numeric target become number tasks (`["three", "3"]`
-> 3); the others are text tasks with every accepted target in `metadata.targets`.
"""
from __future__ import annotations

import logging
import random
import re
import zlib
from pathlib import Path

from ..errors import DataError
from .answers import normalize_text, parse_number
from ..io import read_json
from .schema import Example, choice_letters, format_choices

log = logging.getLogger(__name__)
_PLAIN_NUMBER = re.compile(r"^-?\d[\d,]*(\.\d+)?$")


def task_files(path: str | Path) -> list[Path]:
    """The task.json files of a task folder (itself, or its subtasks), or of a task.json path."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not (p / "task.json").exists() and not any(p.glob("*/task.json")):
        raise DataError(f"{p}: no BIG-bench task.json here or in its subfolders")
    own = p / "task.json"
    files = [own] if own.exists() and read_json(own).get("examples") else []
    return files + sorted(q for q in p.glob("*/task.json") if read_json(q).get("examples"))


def load_bigbench(path: str | Path, shuffle_choices: bool = True) -> list[Example]:
    out: list[Example] = []
    for f in task_files(path):
        out += _load_task(f, Path(path), shuffle_choices)
    if not out:
        raise DataError(f"{path}: no examples in its task.json files")
    return out


def _load_task(f: Path, root: Path, shuffle_choices: bool = True) -> list[Example]:
    d = read_json(f)
    if not isinstance(d, dict) or not isinstance(d.get("examples"), list):
        raise DataError(f"{f}: expected a BIG-bench task object with an `examples` list")
    name = d.get("name") or f.parent.name
    sub = f.parent.name if f.parent != root else None
    prefix = (d.get("task_prefix") or d.get("prefix") or "").strip()
    in_prefix = (d.get("example_input_prefix") or "").strip()
    exs = d["examples"]
    skipped = 0
    numeric = all("target" in e and _numeric_target(e["target"]) is not None for e in exs if "target_scores" not in e)
    out = []
    for i, e in enumerate(exs):
        where = f"{f} examples[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("input"), str):
            raise DataError(f"{where}: field 'input': missing or not a string")
        body = " ".join(x for x in (prefix, f"{in_prefix} {e['input'].strip()}".strip()) if x)
        meta = {"task": name, "index": i, **({"subtask": sub} if sub else {})}
        ex_id = f"bigbench-{name}-{i}" if not sub else f"bigbench-{f.parent.parent.name}-{sub}-{i}"
        if "target_scores" in e:
            scores = e["target_scores"]
            if not isinstance(scores, dict) or not scores:
                raise DataError(f"{where}: field 'target_scores': expected an object option -> score")
            keys = list(scores)
            if shuffle_choices:
                random.Random(zlib.crc32(ex_id.encode())).shuffle(keys)
            opts = [str(k).strip() for k in keys]
            best = max(range(len(opts)), key=lambda j: scores[keys[j]])
            if len(opts) > 26:  # past Z options have no letters: the best option becomes a free-form target
                obj = {"id": ex_id, "question": body, "answer": opts[best], "kind": "text",
                       "metadata": {**meta, "targets": [opts[best]], "options": len(opts)}}
            else:
                obj = {"id": ex_id, "question": f"{body} {format_choices(opts)}",
                       "answer": choice_letters(len(opts))[best], "kind": "choice", "choices": opts, "metadata": meta}
        elif "target" in e:
            targets = e["target"] if isinstance(e["target"], list) else [e["target"]]
            if not targets or not all(isinstance(t, str) for t in targets):
                raise DataError(f"{where}: field 'target': expected a string or a list of strings")
            if numeric:
                obj = {"id": ex_id, "question": body, "answer": _numeric_target(e["target"]), "kind": "number",
                       "metadata": {**meta, "targets": targets}}
            else:
                obj = {"id": ex_id, "question": body, "answer": targets[0], "kind": "text",
                       "metadata": {**meta, "targets": targets}}
        else:
            raise DataError(f"{where}: has neither `target_scores` (multiple choice) nor `target` (free form)")
        if obj["kind"] == "text" and not normalize_text(obj["answer"]):
            skipped += 1  # e.g. dyck_languages' "] }": the text answer kind compares letters and digits
            continue
        out.append(Example.parse(obj, where))
    if skipped:
        log.warning("%s: skipped %d of %d examples whose target has no letter or digit (the text answer kind "
                    "cannot compare them)", f, skipped, len(exs))
    return out


def _numeric_target(target) -> str | None:
    """The first target that is a plain number ("3", "1,200", "-0.5"), normalised; else None."""
    for t in target if isinstance(target, list) else [target]:
        if isinstance(t, str) and _PLAIN_NUMBER.match(t.strip()):
            return parse_number(t.strip())
    return None
