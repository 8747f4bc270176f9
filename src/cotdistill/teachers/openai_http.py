"""OpenAI-compatible HTTP backend (OpenAI, vLLM's server, llama.cpp, TGI...), chat or completions.

Requests run with a bounded number in flight; the `openai` client retries 408/409/429/5xx,
timeouts and connection errors with exponential backoff and honours `Retry-After`. Errors no
retry can fix (bad key, bad model name, bad request) stop the run with a clear message.
The API key is read from the environment and never logged or stored.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Sequence

from ..errors import TeacherError
from .base import Completion, Progress, Request, Teacher


class OpenAITeacher(Teacher):
    backend = "openai"

    def __init__(
        self, model: str, base_url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY",
        endpoint: Literal["completions", "chat"] = "completions", concurrency: int = 8,
        max_retries: int = 6, timeout_s: float = 60.0,
    ):
        import openai

        key = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise TeacherError(
                    f"the teacher's API key variable ${api_key_env} is not set; export it, or set "
                    f"`teacher.api_key_env` to the variable that holds the key (null for servers without keys)"
                )
        self.model, self.base_url, self.endpoint = model, base_url, endpoint
        self.concurrency = max(1, concurrency)
        self.chunk_size = self.concurrency * 4
        self._client = openai.OpenAI(api_key=key or "EMPTY", base_url=base_url, max_retries=max_retries,
                                     timeout=timeout_s)
        self._openai = openai

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "model": self.model, "endpoint": self.endpoint, "base_url": self.base_url}

    def _one(self, req: Request) -> Completion:
        p = req.params
        kw = dict(model=self.model, max_tokens=p.max_tokens, temperature=p.temperature)
        if p.stop:
            kw["stop"] = list(p.stop)
        if req.seed is not None:
            kw["seed"] = req.seed
        t0 = time.perf_counter()
        err = self._openai
        try:
            if self.endpoint == "chat":
                r = self._client.chat.completions.create(messages=[{"role": "user", "content": req.prompt}], **kw)
                choice = r.choices[0]
                text = choice.message.content or ""
            else:
                r = self._client.completions.create(prompt=req.prompt, **kw)
                choice = r.choices[0]
                text = choice.text
        except (err.AuthenticationError, err.PermissionDeniedError) as e:
            raise TeacherError(f"teacher endpoint {self.base_url or 'api.openai.com'} refused the API key "
                               f"(HTTP {e.status_code}); check the key's variable") from None
        except (err.NotFoundError, err.BadRequestError) as e:
            raise TeacherError(f"teacher endpoint rejected the request for model {self.model!r} "
                               f"(HTTP {e.status_code}): {_brief(e)}") from None
        except err.APIConnectionError as e:
            raise TeacherError(f"cannot reach teacher endpoint {self.base_url or 'api.openai.com'} after retries: "
                               f"{type(e).__name__}") from None
        except err.APIStatusError as e:
            raise TeacherError(f"teacher endpoint failed after retries (HTTP {e.status_code}): {_brief(e)}") from None
        usage = getattr(r, "usage", None)
        return Completion(
            text=text, finish_reason=choice.finish_reason or "stop",
            prompt_tokens=getattr(usage, "prompt_tokens", None), completion_tokens=getattr(usage, "completion_tokens", None),
            duration_s=time.perf_counter() - t0,
        )

    def complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        with ThreadPoolExecutor(self.concurrency) as pool:
            futs = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            try:
                for f in futs:  # in submission order; any fatal error cancels the rest
                    out[futs[f]] = f.result()
                    if progress:
                        progress(1)
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self._client.close()


def _brief(e: Exception) -> str:
    msg = getattr(e, "message", None) or str(e)
    return msg[:300]
