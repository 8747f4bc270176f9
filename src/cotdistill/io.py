"""Atomic file writes: an artifact either exists complete or not at all, so an interrupted
stage never leaves a half-written file that a later stage would take as finished."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import DataError
from .tasks.files import read_jsonl


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; results are ordinary files and get what the user's umask gives.
FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def ordinary_modes(folder: str | Path) -> None:
    """Give files saved by libraries that write through private temp files (safetensors in
    save_pretrained comes out 0600) the permissions of any other result file."""
    for f in Path(folder).rglob("*"):
        if f.is_file():
            os.chmod(f, FILE_MODE)


def write_json(path: str | Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl_list(path: str | Path, required: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    for lineno, r in read_jsonl(Path(path)):
        for f in required:
            if f not in r:
                raise DataError(f"{path}:{lineno}: missing field {f!r}")
        rows.append(r)
    return rows
