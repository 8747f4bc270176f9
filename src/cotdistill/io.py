"""Files: reading data files with errors that name the file and line, and atomic writes (an
artifact either exists complete or not at all, so an interrupted stage never leaves a half-written
file that a later stage would take as finished). The lowest layer: it imports nothing of ours but
errors."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import DataError


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


def read_text(path: Path) -> str:
    """A data file's text; a missing file, a folder or bytes that are not UTF-8 name the file and line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    data = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file ({e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {col}); "
                        f"re-save the file as UTF-8") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; malformed JSON names the line."""
    path = Path(path)
    # split on "\n" only: str.splitlines() would also split inside a JSON string holding U+2028
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def path_problems(path: str | None, field: str, what: str = "file") -> list[str]:
    """Why the config field `field` naming `path` (a file, or with `what="folder"` a folder) cannot be
    read: it does not exist, or is a folder where a file was expected. Nothing when `path` is unset."""
    if path and not Path(path).expanduser().exists():
        return [f"`{field}`: {path} does not exist"]
    if path and what == "file" and Path(path).expanduser().is_dir():
        return [f"`{field}`: {path} is a folder, not a {what}"]
    return []


def content_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_digest(folder: Path) -> str:
    """The files of a folder by content, not by time: a rerun saves an unchanged model again, and a
    retrained one differs in its bytes (~1 GB/s: a fraction of a second next to any evaluation)."""
    def one(path: Path) -> str:
        h = hashlib.blake2b()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()[:16]

    return content_digest(sorted((str(p.relative_to(folder)), one(p)) for p in folder.rglob("*") if p.is_file()))
