"""Generic loaders: JSON Lines, CSV, JSON and Hugging Face datasets with a column mapping.

Every record is validated; an error names the file, the line and the field.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ..io import read_json, read_jsonl, read_text  # noqa: F401  (their home; loaders here use them)
from .schema import AnswerKind, Example, choices_from_question

DEFAULT_COLUMNS = {"id": "id", "question": "question", "answer": "answer", "choices": "choices"}


def records_to_examples(
    records: Iterable[tuple[str, dict]],
    kind: AnswerKind | str,
    columns: dict[str, str] | None = None,
    id_prefix: str = "",
) -> list[Example]:
    """Map raw records (with a `where` label each) to Examples through a column mapping
    {field: column}. Unmapped columns go to metadata."""
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    out = []
    first_seen: dict[str, str] = {}
    for i, (where, rec) in enumerate(records):
        for field in ("question", "answer"):
            if cols[field] not in rec or rec[cols[field]] in (None, ""):
                raise DataError(f"{where}: missing field {cols[field]!r} (mapped to {field!r})")
        choices = rec.get(cols["choices"])
        if isinstance(choices, str):  # CSV: options separated by '|'
            choices = [c.strip() for c in choices.split("|") if c.strip()]
        if not choices and AnswerKind(kind) is AnswerKind.choice:
            choices = choices_from_question(str(rec[cols["question"]]))
        used = {cols[k] for k in cols}
        ex_id = str(rec.get(cols["id"], f"{id_prefix}{i}"))
        if ex_id in first_seen:
            raise DataError(f"{where}: duplicate id {ex_id!r} (first at {first_seen[ex_id]}); ids must be unique")
        first_seen[ex_id] = where
        obj = {
            "id": ex_id,
            "question": str(rec[cols["question"]]),
            "answer": str(rec[cols["answer"]]),
            "kind": kind,
            "choices": choices or None,
            # Fields mapped beyond the schema's (intermediate, head_span, ...) land in metadata by field name.
            "metadata": {**{k: v for k, v in rec.items() if k not in used},
                         **{f: rec[c] for f, c in cols.items() if f not in DEFAULT_COLUMNS and c in rec}},
        }
        if {"head_span", "tail_span"} & obj["metadata"].keys():  # a relation record: both spans, inside the text
            meta = obj["metadata"]
            meta["head_span"], meta["tail_span"] = entity_spans(obj["question"], meta.get("head_span"),
                                                                meta.get("tail_span"), where)
        out.append(Example.parse(obj, where))
    return out


def entity_spans(text: str, head_span, tail_span, where: str) -> tuple[list[int], list[int]]:
    """A relation record's head and tail as [start, end) character offsets inside `text`; CSV
    cells may hold them as JSON ('[0, 5]')."""
    spans = []
    for name, span in (("head_span", head_span), ("tail_span", tail_span)):
        if isinstance(span, str) and span.strip().startswith("["):
            try:
                span = json.loads(span)
            except json.JSONDecodeError:
                pass
        if (not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
                or not 0 <= span[0] < span[1] <= len(text)):
            got = "nothing (a relation record needs both head_span and tail_span)" if span is None else repr(span)
            raise DataError(f"{where}: field {name!r}: expected [start, end) character offsets inside the text "
                            f"({len(text)} characters), got {got}")
        spans.append(list(span))
    return spans[0], spans[1]


def load_file(path: str | Path, kind: AnswerKind | str, columns: dict[str, str] | None = None) -> list[Example]:
    """Load .jsonl, .json (a list of objects) or .csv into Examples."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    suffix = suffix.removesuffix(".gz")  # gzip-compressed files read like their plain kind
    if suffix == ".jsonl":
        recs = ((f"{path}:{n}", r) for n, r in read_jsonl(path))
    elif suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects")
        recs = ((f"{path}[{i}]", r) for i, r in enumerate(data))
    elif suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
        recs = ((f"{path}:{i + 2}", r) for i, r in enumerate(rows))  # line 1 is the header
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json or .csv (optionally .gz)")
    out = records_to_examples(recs, kind, columns, id_prefix=f"{path.stem}-")
    if not out:
        raise DataError(f"{path}: no examples in file")
    return out


def load_hf_dataset(
    name: str, kind: AnswerKind | str, split: str = "train", columns: dict[str, str] | None = None,
    config: str | None = None,
) -> list[Example]:
    """A Hugging Face dataset by hub id or local path (needs a hub or a local copy)."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:
        raise DataError(f"cannot load Hugging Face dataset {name!r} split {split!r}: {e}") from None
    return records_to_examples(((f"{name}[{split}][{i}]", r) for i, r in enumerate(ds)), kind, columns)


def load_gsm8k(path: str | Path) -> list[Example]:
    """GSM8K JSONL: `answer` is a worked solution ending '#### <number>'; the solution is kept as
    a human rationale in metadata (calculator annotations <<...>> removed)."""
    import re

    out = []
    for lineno, rec in read_jsonl(Path(path)):
        where = f"{path}:{lineno}"
        sol = rec.get("answer")
        if not isinstance(sol, str) or "####" not in sol:
            raise DataError(f"{where}: field 'answer' must end with '#### <number>'")
        rationale, final = sol.rsplit("####", 1)
        rationale = re.sub(r"<<[^>]*>>", "", rationale).strip()
        obj = {"id": f"gsm8k-{Path(path).stem}-{lineno - 1}", "question": rec.get("question", ""),
               "answer": final.strip().replace(",", ""), "kind": "number",
               "metadata": {"human_rationale": rationale}}
        out.append(Example.parse(obj, where))
    if not out:
        raise DataError(f"{path}: no examples in file")
    return out
