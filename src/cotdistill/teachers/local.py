"""Local transformers teacher: any causal-LM or seq2seq model by hub id or local path, batched
generation by prompt length with the KV cache."""
from __future__ import annotations

from typing import Sequence

from .. import hf
from .base import Completion, Progress, Request, Teacher


class LocalTeacher(Teacher):
    backend = "transformers"

    def __init__(self, model: str, batch_size: int = 16, trust_remote_code: bool = False, device: str | None = None):
        import torch

        self.model_id = model
        self.batch_size = batch_size
        self.chunk_size = batch_size * 4
        self.model, self.tok, self.seq2seq = hf.load_model(model, trust_remote_code=trust_remote_code)
        self.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.revision = getattr(self.model.config, "_commit_hash", None) or getattr(self.model.config, "_name_or_path", "")

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "model": self.model_id, "revision": str(self.revision)}

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        # Requests with the same parameters share a batch; sampled ones are seeded per batch.
        out: list[Completion | None] = [None] * len(requests)
        groups: dict = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.params, r.sample_index), []).append(i)
        for (params, sample), idx in groups.items():
            gens = hf.generate(
                self.model, self.tok, [requests[i].prompt for i in idx], seq2seq=self.seq2seq,
                max_new_tokens=params.max_tokens, temperature=params.temperature,
                seed=None if params.seed is None else params.seed + sample, batch_size=self.batch_size,
                stop=params.stop, progress=progress,
            )
            for i, g in zip(idx, gens):
                out[i] = Completion(g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens, g.duration_s)
        return out  # type: ignore[return-value]
