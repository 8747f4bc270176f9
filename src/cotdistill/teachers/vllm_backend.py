"""vLLM offline teacher (optional extra: `pip install cotdistill[vllm]`; imported only when used).

All samples of a prompt come from one `SamplingParams(n=..., seed=...)` request, and prefix
caching shares the prompt's KV cache between them and between the two Zero-shot-CoT stages."""
from __future__ import annotations

from typing import Sequence

from ..errors import TeacherError
from .base import Completion, Progress, Request, Teacher, group_samples


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

        groups = group_samples(requests)  # all samples of a prompt in one request with n
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
