"""OpenAI-compatible HTTP backend (OpenAI, vLLM's server, llama.cpp, TGI...), chat or completions.

Asynchronous, with a bounded number of requests in flight. Retries 408/409/429/5xx, timeouts,
connection errors and malformed bodies with exponential backoff and full jitter, honouring
`Retry-After` / `retry-after-ms`. Errors no retry can fix (401, 403, 400, 404: bad key, bad model
name, bad request) stop the run at once. Optional requests- and tokens-per-minute limits.

It talks HTTP through httpx directly rather than through the `openai` package's client: the
engine needs per-attempt control (which errors retry, how long to wait, what counts as a malformed
body) and a low per-request cost at hundreds of requests per second. The API key is read from the
environment and redacted from every message; it never reaches the store or the logs.
"""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import threading
import time
from collections import Counter
from typing import Literal, Sequence

import httpx

from ..errors import TeacherError
from .base import Completion, OnResult, Progress, Request, Teacher, group_samples

RETRYABLE_STATUS = {408, 409, 429}
# httpcore's pool does work proportional to (queued requests x connections) on every completion,
# so one client with 64+ connections spends its time in the pool (measured: 64 in flight gave 65
# completions/s against a 100 ms server). Slots are spread over several small clients instead.
CONNECTIONS_PER_CLIENT = 16


class RateLimiter:
    """Token buckets for requests and tokens per minute (either may be None = unlimited)."""

    def __init__(self, rpm: float | None, tpm: float | None):
        self.rpm, self.tpm = rpm, tpm
        self._req = rpm or 0.0
        self._tok = tpm or 0.0
        self._t = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                dt, self._t = now - self._t, now
                if self.rpm:
                    self._req = min(self.rpm, self._req + dt * self.rpm / 60)
                if self.tpm:
                    self._tok = min(self.tpm, self._tok + dt * self.tpm / 60)
                need_r = 0 if not self.rpm else max(0.0, 1 - self._req) * 60 / self.rpm
                need_t = 0 if not self.tpm else max(0.0, min(tokens, self.tpm) - self._tok) * 60 / self.tpm
                wait = max(need_r, need_t)
                if wait <= 0:
                    if self.rpm:
                        self._req -= 1
                    if self.tpm:
                        self._tok -= min(tokens, self.tpm)
                    return
                await asyncio.sleep(wait)


def retry_after_s(headers: httpx.Headers) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return float(ra)
    except ValueError:
        when = email.utils.parsedate_to_datetime(ra)
        return max(0.0, when.timestamp() - time.time()) if when else None


class OpenAITeacher(Teacher):
    backend = "openai"

    def __init__(
        self, model: str, base_url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY",
        endpoint: Literal["completions", "chat"] = "completions", concurrency: int = 8, max_retries: int = 8,
        timeout_s: float = 60.0, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
        use_n: bool = False, backoff_base_s: float = 0.5, backoff_max_s: float = 30.0,
    ):
        self._key = None
        if api_key_env:
            self._key = os.environ.get(api_key_env)
            if not self._key:
                raise TeacherError(
                    f"the teacher's API key variable ${api_key_env} is not set; export it, or set "
                    f"`teacher.api_key_env` to the variable that holds the key (null for servers without keys)")
        self.model, self.endpoint, self.use_n = model, endpoint, use_n
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self.concurrency, self.max_retries, self.timeout_s = max(1, concurrency), max_retries, timeout_s
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.chunk_size = 1 << 30  # results stream to the store one by one: no need to chunk
        self.sent = 0  # HTTP requests actually sent, retries included
        self.retries: Counter = Counter()  # reason -> count

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "model": self.model, "endpoint": self.endpoint, "base_url": self.base_url}

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # -- one HTTP call, with retries -----------------------------------------------------------
    def _body(self, req: Request, n: int) -> dict:
        p = req.params
        body: dict = {"model": self.model, "max_tokens": p.max_tokens, "temperature": p.temperature}
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": req.prompt}]
        else:
            body["prompt"] = req.prompt
        if p.stop:
            body["stop"] = list(p.stop)
        seed = p.seed if n > 1 else req.seed
        if seed is not None:
            body["seed"] = seed
        if n > 1:
            body["n"] = n
        return body

    def _parse(self, data: dict, n: int, latency: float) -> list[Completion]:
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise ValueError(f"expected {n} choices, got {len(choices)}")
        usage = data.get("usage") or {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        out = []
        for c in choices:
            text = c["message"]["content"] if self.endpoint == "chat" else c["text"]
            if not isinstance(text, str):
                raise ValueError("choice text is not a string")
            out.append(Completion(text, c.get("finish_reason") or "stop", pt, None if ct is None else ct // n, latency))
        return out

    async def _call(self, clients: list[httpx.AsyncClient], slots: asyncio.Queue, limiter: RateLimiter,
                    req: Request, n: int) -> list[Completion]:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        body = self._body(req, n)
        est_tokens = len(req.prompt) // 4 + req.params.max_tokens * n
        last = "?"
        for attempt in range(self.max_retries + 1):
            await limiter.acquire(est_tokens)
            delay = None
            slot = await slots.get()  # in flight only while a request is on the wire, not while backing off
            try:
                t0 = time.perf_counter()
                self.sent += 1
                try:
                    resp = await clients[slot].post(path, json=body)
                except httpx.ConnectError as e:
                    last = f"cannot connect ({type(e).__name__})"
                except httpx.TimeoutException:
                    last = "timeout"
                except httpx.TransportError as e:
                    last = f"connection error ({type(e).__name__})"
                else:
                    code = resp.status_code
                    if code == 200:
                        try:
                            return self._parse(resp.json(), n, time.perf_counter() - t0)
                        except (ValueError, KeyError, TypeError, IndexError):
                            last = "malformed response body"
                    elif code in RETRYABLE_STATUS or code >= 500:
                        last = f"HTTP {code}"
                        delay = retry_after_s(resp.headers)
                    else:
                        raise TeacherError(self._fatal(code, resp))
            finally:
                slots.put_nowait(slot)
            self.retries[last] += 1
            if attempt < self.max_retries:
                cap = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
                await asyncio.sleep(delay if delay is not None else random.uniform(0, cap))
        if last.startswith("cannot connect"):
            raise TeacherError(f"cannot reach teacher endpoint {self.base_url} ({last}, {self.max_retries + 1} "
                               f"attempts): is the server up and `teacher.base_url` right?")
        raise TeacherError(f"teacher endpoint {self.base_url}: a request failed {self.max_retries + 1} times; "
                           f"last error: {last}. Raise `teacher.max_retries` or check the server")

    def _fatal(self, code: int, resp: httpx.Response) -> str:
        try:
            msg = resp.json().get("error", {}).get("message", "")
        except Exception:
            msg = resp.text[:200]
        what = {401: "refused the API key", 403: "refused access with this API key",
                404: f"does not serve model {self.model!r} (or the URL path is wrong)"}.get(code, "rejected the request")
        return self._redact(f"teacher endpoint {self.base_url} {what} (HTTP {code}): {msg[:300]}")

    # -- many calls -------------------------------------------------------------------------------
    def _groups(self, requests: Sequence[Request]) -> list[list[int]]:
        """With `use_n`, consecutive samples of one prompt go out as one request with n."""
        return group_samples(requests) if self.use_n else [[i] for i in range(len(requests))]

    async def _run(self, requests, progress, on_result) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        limiter = RateLimiter(self.rpm, self.tpm)
        headers = {"Authorization": f"Bearer {self._key or 'EMPTY'}"}
        n_clients = -(-self.concurrency // CONNECTIONS_PER_CLIENT)
        per = -(-self.concurrency // n_clients)
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        slots: asyncio.Queue = asyncio.Queue()
        for k in range(self.concurrency):  # `concurrency` slots in all, at most `per` on one client
            slots.put_nowait(k % n_clients)
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(httpx.AsyncClient(
                base_url=self.base_url, headers=headers, limits=limits, timeout=timeout)) for _ in range(n_clients)]

            async def one(group):
                return group, await self._call(clients, slots, limiter, requests[group[0]], len(group))

            tasks = [asyncio.create_task(one(g)) for g in self._groups(requests)]
            try:
                for fut in asyncio.as_completed(tasks):
                    group, comps = await fut
                    for i, c in zip(group, comps):
                        out[i] = c
                        if on_result:
                            on_result(i, c)
                    if progress:
                        progress(len(group), tokens=sum((c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in comps))
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return out  # type: ignore[return-value]

    def complete(self, requests: Sequence[Request], progress: Progress | None = None,
                 on_result: OnResult | None = None) -> list[Completion]:
        if not requests:
            return []
        coro = self._run(list(requests), progress, on_result)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        box: dict = {}  # called from inside an event loop (a notebook): run ours on a thread

        def target():
            try:
                box["v"] = asyncio.run(coro)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                box["e"] = e

        th = threading.Thread(target=target)
        th.start()
        th.join()
        if "e" in box:
            raise box["e"]
        return box["v"]
