"""Persistent completion cache (SQLite, WAL mode): a rerun or a resumed run never asks a teacher
again for a completion it already has. Keyed by a hash of canonical JSON of the teacher's
identity, the prompt, the generation parameters and the sample index, so sampled outputs are
cached too and two models never share entries. The schema evolves through numbered migrations."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

from ..errors import CacheError
from .base import Completion, OnResult, Progress, Request, Teacher

MIGRATIONS = [
    # 1: the completions table
    """CREATE TABLE completions (
        key TEXT PRIMARY KEY, identity TEXT NOT NULL, prompt TEXT NOT NULL, params TEXT NOT NULL,
        sample_index INTEGER NOT NULL, text TEXT NOT NULL, finish_reason TEXT NOT NULL,
        prompt_tokens INTEGER, completion_tokens INTEGER, duration_s REAL, created REAL NOT NULL)""",
    # 2: estimated cost in USD of each completion
    "ALTER TABLE completions ADD COLUMN cost_usd REAL",
]


def request_key(identity: dict, req: Request) -> str:
    blob = json.dumps(
        {"teacher": identity, "prompt": req.prompt, "params": req.params.as_dict(), "sample": req.sample_index},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class CompletionCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise CacheError(f"{self.path}: not a usable cache database ({e}); move it away to start afresh") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise CacheError(f"{self.path}: cache schema v{version} is newer than this cotdistill (v{len(MIGRATIONS)})")
        for i in range(version, len(MIGRATIONS)):
            self._db.execute(MIGRATIONS[i])
            self._db.execute(f"PRAGMA user_version = {i + 1}")

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        out: dict[str, Completion] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i:i + 500])
                q = f"SELECT key, text, finish_reason, prompt_tokens, completion_tokens, duration_s FROM completions WHERE key IN ({','.join('?' * len(chunk))})"
                for k, text, fr, pt, ct, d in self._db.execute(q, chunk):
                    out[k] = Completion(text, fr, pt, ct, d or 0.0, cached=True)
        return out

    def put(self, key: str, identity: dict, req: Request, c: Completion, cost_usd: float | None = None) -> None:
        """Committed at once (autocommit, WAL): a process killed a moment later keeps it."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO completions (key, identity, prompt, params, sample_index, text, finish_reason,"
                " prompt_tokens, completion_tokens, duration_s, created, cost_usd) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, json.dumps(identity, sort_keys=True), req.prompt, json.dumps(req.params.as_dict()),
                 req.sample_index, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens,
                 c.duration_s, time.time(), cost_usd),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class CachedTeacher(Teacher):
    """Wraps a backend: answers from the cache, sends only the misses, commits each new
    completion as soon as the backend returns its batch."""

    def __init__(self, inner: Teacher, cache: CompletionCache, price_prompt_per_1m: float = 0.0,
                 price_completion_per_1m: float = 0.0):
        self.inner, self.cache = inner, cache
        self.backend = inner.backend
        self.prices = (price_prompt_per_1m, price_completion_per_1m)
        self.hits = self.misses = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd = 0.0
        self.truncated = 0

    def cost(self, c: Completion) -> float:
        return ((c.prompt_tokens or 0) * self.prices[0] + (c.completion_tokens or 0) * self.prices[1]) / 1e6

    @property
    def identity(self) -> dict:
        return self.inner.identity

    def complete(self, requests: Sequence[Request], progress: Progress | None = None,
                 on_result: OnResult | None = None) -> list[Completion]:
        ident = self.identity
        keys = [request_key(ident, r) for r in requests]
        found = self.cache.get_many(keys)
        out: list[Completion | None] = [found.get(k) for k in keys]
        todo = [i for i, c in enumerate(out) if c is None]
        if on_result:
            for i, c in enumerate(out):
                if c is not None:
                    on_result(i, c)
        self.hits += len(requests) - len(todo)
        self.misses += len(todo)
        if progress and len(requests) > len(todo):
            progress(len(requests) - len(todo))

        def commit(i: int, c: Completion) -> None:
            cost = self.cost(c)
            self.cache.put(keys[i], ident, requests[i], c, cost)
            self.prompt_tokens += c.prompt_tokens or 0
            self.completion_tokens += c.completion_tokens or 0
            self.cost_usd += cost
            self.truncated += c.finish_reason == "length"
            out[i] = c
            if on_result:
                on_result(i, c)

        def report(n, tokens=0, cost=0.0):
            if progress:
                progress(n, tokens=tokens, cost=self.cost_usd)

        # Backends that stream results commit each one as it arrives; batch backends are sent in
        # chunks so that a crash loses at most one chunk of work.
        chunk = max(1, getattr(self.inner, "chunk_size", 64))
        for s in range(0, len(todo), chunk):
            idx = todo[s:s + chunk]
            self.inner.complete([requests[i] for i in idx], report, lambda j, c, idx=idx: commit(idx[j], c))
        return out  # type: ignore[return-value]

    def summary(self) -> dict:
        inner = self.inner
        return {"requests_answered_from_cache": self.hits, "requests_needed": self.misses,
                "http_requests_sent": getattr(inner, "sent", self.misses), "retries": dict(getattr(inner, "retries", {})),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "estimated_cost_usd": round(self.cost_usd, 6), "truncated": self.truncated}

    def close(self) -> None:
        self.inner.close()
