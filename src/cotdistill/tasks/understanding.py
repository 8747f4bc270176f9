"""Language-understanding tasks whose label has an intermediate step (for CoTT, METHODS.md §6):

- hierarchical classification: the label is a path (`comp.sys.mac.hardware`); the intermediate
  step is its top level (`comp`), or a parent column mapped with `task.columns.intermediate`.
  Built in: 20 Newsgroups (`{"id", "label", "text"}`, gzip JSON Lines, by-date split).
- relation extraction: a text with a head and a tail entity span and a directed label
  (`Component-Whole(e2,e1)`); the intermediate step is the undirected relation (`Component-Whole`).
  Built in: SemEval-2010 Task 8 (4-line records with `<e1>`/`<e2>` tags).

Every example keeps its intermediate step in `metadata["intermediate"]`; relation examples also
keep `head`, `tail` and their character spans in the (tag-free) text.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..io import read_jsonl, read_text
from .files import entity_spans
from .schema import Example

NEWSGROUPS = "20newsgroups"
SEMEVAL = "semeval2010_task8"
FOLDERS = {NEWSGROUPS: "20newsgroups", SEMEVAL: "semeval2010-task8"}  # under the shared data folder
SEMEVAL_FILES = {"train": "SemEval2010_task8_training/TRAIN_FILE.TXT",
                 "test": "SemEval2010_task8_testing_keys/TEST_FILE_FULL.TXT"}
_DIRECTION = re.compile(r"^(?P<rel>.+?)\((?P<dir>e[12],e[12])\)$")
_TAG = re.compile(r"</?e[12]>")


def parent_of(label: str, separator: str = ".") -> str | None:
    """The top level of a label path ('comp.graphics' -> 'comp'); None without a separator."""
    head, sep, rest = label.partition(separator)
    return head if sep and head and rest else None


def undirected(label: str) -> str:
    """'Cause-Effect(e2,e1)' -> 'Cause-Effect'; a label without a direction is its own relation."""
    m = _DIRECTION.match(label.strip())
    return m.group("rel") if m else label.strip()


def relation_example(ex_id: str, text: str, head_span, tail_span, label: str, where: str,
                     metadata: dict | None = None) -> Example:
    """A relation-extraction example from clean text and [start, end) character spans."""
    spans = entity_spans(text, head_span, tail_span, where)
    meta = {**(metadata or {}), "head": text[spans[0][0]:spans[0][1]], "tail": text[spans[1][0]:spans[1][1]],
            "head_span": spans[0], "tail_span": spans[1], "intermediate": undirected(label)}
    return Example.parse({"id": ex_id, "question": text, "answer": label, "kind": "label", "metadata": meta}, where)


def untag(sentence: str, where: str) -> tuple[str, list[int], list[int]]:
    """'a <e1>b</e1> c <e2>d</e2>' -> ('a b c d', head span, tail span)."""
    spans: dict[str, list[int]] = {}
    out, pos = [], 0
    for m in _TAG.finditer(sentence):
        out.append(sentence[pos:m.start()])
        pos = m.end()
        at = sum(len(p) for p in out)
        tag = m.group()
        key = tag.strip("</>")
        if tag.startswith("</"):
            if key not in spans:
                raise DataError(f"{where}: {tag} closes an entity that was never opened")
            spans[key].append(at)
        else:
            spans[key] = [at]
    out.append(sentence[pos:])
    missing = [t for t in ("e1", "e2") if len(spans.get(t, [])) != 2]
    if missing:
        raise DataError(f"{where}: the sentence needs both entity tags <e1>...</e1> and <e2>...</e2>; "
                        f"{' and '.join(f'<{t}>' for t in missing)} missing or unclosed")
    return "".join(out), spans["e1"], spans["e2"]


def load_semeval(path: Path, split: str) -> list[Example]:
    """SemEval-2010 Task 8 records: 'ID<tab>"sentence"', label, 'Comment: ...', blank line."""
    lines = read_text(path).replace("\r\n", "\n").split("\n")
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        where = f"{path}:{i + 1}"
        head = lines[i].split("\t", 1)
        if len(head) != 2 or not head[0].strip().isdigit():
            raise DataError(f"{where}: expected 'ID<tab>\"sentence\"' starting a record, got {lines[i][:60]!r}")
        if i + 1 >= len(lines) or not lines[i + 1].strip():
            raise DataError(f"{path}:{i + 2}: the record of sentence {head[0]} has no relation label line")
        text, e1, e2 = untag(head[1].strip().strip('"'), where)
        label = lines[i + 1].strip()
        out.append(relation_example(f"semeval-{split}-{head[0].strip()}", text, e1, e2, label, f"{path}:{i + 2}",
                                    {"task": SEMEVAL, "index": int(head[0])}))
        i += 2
        while i < len(lines) and lines[i].strip():  # the comment line
            i += 1
    if not out:
        raise DataError(f"{path}: no records")
    return out


def load_newsgroups(path: Path) -> list[Example]:
    out = []
    for lineno, r in read_jsonl(path):
        where = f"{path}:{lineno}"
        for field in ("id", "label", "text"):
            if not isinstance(r.get(field), str) or not r[field]:
                raise DataError(f"{where}: field {field!r}: missing or not a string")
        parent = parent_of(r["label"])
        if parent is None:
            raise DataError(f"{where}: field 'label': {r['label']!r} has no '.' path separator (a hierarchical "
                            f"label such as 'comp.graphics' was expected)")
        out.append(Example.parse({"id": f"20ng-{r['id']}", "question": r["text"], "answer": r["label"], "kind": "label",
                                  "metadata": {"task": NEWSGROUPS, "intermediate": parent}}, where))
    return out


def load_understanding(name: str, root: Path, split: str) -> list[Example]:
    """A built-in understanding benchmark from the shared data folder (`root`)."""
    if split not in ("train", "test"):
        raise DataError(f"{name}: split must be 'train' or 'test', got {split!r}")
    if name == NEWSGROUPS:
        return load_newsgroups(root / FOLDERS[name] / f"{split}.jsonl.gz")
    return load_semeval(root / FOLDERS[name] / SEMEVAL_FILES[split], split)


UNDERSTANDING = (NEWSGROUPS, SEMEVAL)
