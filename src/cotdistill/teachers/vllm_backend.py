"""vLLM offline teacher (optional extra: `pip install cotdistill[vllm]`; imported only when used).

All samples of a prompt come from one `SamplingParams(n=..., seed=...)` request, and prefix
caching shares the prompt's KV cache between them and between the two Zero-shot-CoT stages."""
from __future__ import annotations

from typing import Sequence

from ..errors import TeacherError
from .base import Completion, Progress, Request, Teacher


class VLLMTeacher(Teacher):
    backend = "vllm"

    def __init__(self, model: str, batch_size: int = 256, trust_remote_code: bool = False):
        try:
            from vllm import LLM
        except ImportError:
            raise TeacherError("teacher.backend 'vllm' needs vLLM: pip install 'cotdistill[vllm]'") from None
        self.model_id = model
        self.chunk_size = batch_size
        self.llm = LLM(model=model, enable_prefix_caching=True, trust_remote_code=trust_remote_code)

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "model": self.model_id}

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        from vllm import SamplingParams

        # Group consecutive samples of one prompt into one request with n samples.
        groups: list[list[int]] = []
        for i, r in enumerate(requests):
            g = groups[-1] if groups else None
            if g and requests[g[-1]].prompt == r.prompt and requests[g[-1]].params == r.params \
                    and requests[g[-1]].sample_index + 1 == r.sample_index:
                g.append(i)
            else:
                groups.append([i])
        params = []
        for g in groups:
            p, first = requests[g[0]].params, requests[g[0]]
            params.append(SamplingParams(n=len(g), temperature=p.temperature, max_tokens=p.max_tokens,
                                         stop=list(p.stop) or None, seed=first.seed))
        outs = self.llm.generate([requests[g[0]].prompt for g in groups], params, use_tqdm=False)
        result: list[Completion | None] = [None] * len(requests)
        for g, o in zip(groups, outs):
            for i, c in zip(g, o.outputs):
                result[i] = Completion(c.text, c.finish_reason or "stop", len(o.prompt_token_ids), len(c.token_ids))
        if progress:
            progress(len(requests))
        return result  # type: ignore[return-value]
