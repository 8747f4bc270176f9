"""Replay of released Fine-tune-CoT teacher files (`D_{task}.json`): real teacher completions
served through the teacher protocol, keyed by the exact stage-1 prompt.

Stage-2 prompts are matched on their stage-1 prompt + recorded rationale prefix, so the answer
trigger text does not have to match the one the release used."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DataError, TeacherError
from ..io import read_json
from .base import Completion, Progress, Request, Teacher
from .prompting import STEP_TRIGGER


class ReplayTeacher(Teacher):
    backend = "replay"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = read_json(self.path)
        if not isinstance(data, dict) or "data" not in data:
            raise DataError(f"{self.path}: not a Fine-tune-CoT teacher file (no 'data' object)")
        self.metadata = data.get("metadata", {})
        # stage-1 prompt -> {completion_index: record}
        self.records: dict[str, dict[int, dict]] = {}
        for key, samples in data["data"].items():
            for j, s in enumerate(samples):
                for f in ("reasoning_prompt", "reasoning_completion", "completion"):
                    if f not in s:
                        raise DataError(f"{self.path}: data[{key!r}][{j}] missing field {f!r}")
                self.records.setdefault(s["reasoning_prompt"], {})[int(s.get("completion_index", j))] = s

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "model": self.metadata.get("base_model", "?"), "file": self.path.name}

    def _lookup(self, req: Request) -> Completion:
        cut = req.prompt.find(STEP_TRIGGER)
        stage1 = req.prompt[: cut + len(STEP_TRIGGER)] if cut >= 0 else req.prompt
        recs = self.records.get(stage1)
        if recs is None:
            raise TeacherError(f"{self.path.name}: no recorded completion for prompt {stage1[:90]!r}")
        rec = recs.get(req.sample_index)
        if rec is None:
            raise TeacherError(f"{self.path.name}: has {len(recs)} completions for this prompt, not sample {req.sample_index}")
        if req.prompt == stage1:
            return Completion(rec["reasoning_completion"], rec.get("reasoning_finish_reason", "stop"))
        if not req.prompt.startswith(stage1 + rec["reasoning_completion"]):
            raise TeacherError(f"{self.path.name}: stage-2 prompt does not continue the recorded rationale")
        return Completion(rec["completion"], rec.get("finish_reason", "stop"))

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out = [self._lookup(r) for r in requests]
        if progress:
            progress(len(requests))
        return out
