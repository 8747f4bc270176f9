"""A local OpenAI-compatible server for tests, benchmarks and dry runs: deterministic replies,
simulated latency, and deterministic fault injection (429 with Retry-After, 500, 503, hangs past
the client's timeout, connection resets, malformed JSON).

    python -m cotdistill.teachers.fake_server --latency 0.1 --fault-rate 0.25

Replies depend only on (prompt, seed, choice index); whether an attempt faults depends only on
(prompt, seed, attempt number), so two runs over the same requests see the same faults. It binds
to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
from collections import Counter

FAULTS = ("429", "500", "503", "hang", "reset", "malformed")


def _h(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def reply_text(prompt: str, seed, index: int = 0) -> str:
    return f" reply-{_h(prompt, seed, index) % 10**8:08d}. The answer is {_h(prompt, seed, index, 'a') % 100}."


class FakeOpenAIServer:
    def __init__(self, latency_s: float = 0.0, fault_rate: float = 0.0, key: str | None = "sk-test",
                 models: tuple[str, ...] = ("teacher-1",), hang_s: float = 3.0, retry_after: str = "0.05",
                 max_faults_per_request: int = 2, port: int = 0):
        self.latency_s, self.fault_rate, self.key, self.models = latency_s, fault_rate, key, models
        self.hang_s, self.retry_after, self.max_faults = hang_s, retry_after, max_faults_per_request
        self.port = port
        self.attempts: Counter = Counter()  # (prompt, seed, n) -> requests received
        self.faults: Counter = Counter()
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth_seen: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._serve_thread, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _serve_thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    @property
    def unique(self) -> int:
        return len(self.attempts)

    # -- HTTP ---------------------------------------------------------------------------------------
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                keep = await self._handle(path, headers, body, writer)
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def _write(writer, code: int, obj, headers: dict | None = None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(obj).encode()
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 400: "Bad Request",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(code, "X")
        hdr = f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        for k, v in (headers or {}).items():
            hdr += f"{k}: {v}\r\n"
        writer.write(hdr.encode() + b"\r\n" + body)

    async def _handle(self, path: str, headers: dict, body: bytes, writer) -> bool:
        self.total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(path, headers, body, writer)
        finally:
            self.in_flight -= 1

    async def _respond(self, path, headers, body, writer) -> bool:
        self.auth_seen.add(headers.get("authorization", ""))
        if self.key and headers.get("authorization") != f"Bearer {self.key}":
            self._write(writer, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return True
        try:
            req = json.loads(body)
        except ValueError:
            self._write(writer, 400, {"error": {"message": "body is not JSON"}})
            return True
        if req.get("model") not in self.models:
            self._write(writer, 404, {"error": {"message": f"The model `{req.get('model')}` does not exist"}})
            return True
        chat = path.endswith("/chat/completions")
        prompt = req["messages"][-1]["content"] if chat else req["prompt"]
        seed, n = req.get("seed"), int(req.get("n", 1))
        key = (prompt, seed, n)
        attempt = self.attempts[key]
        self.attempts[key] += 1
        if self.fault_rate and attempt < self.max_faults and (_h("fault", prompt, seed, attempt) % 10_000) < self.fault_rate * 10_000:
            fault = FAULTS[_h("kind", prompt, seed, attempt) % len(FAULTS)]
            self.faults[fault] += 1
            if fault == "429":
                self._write(writer, 429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": self.retry_after})
                return True
            if fault in ("500", "503"):
                self._write(writer, int(fault), {"error": {"message": "server error"}})
                return True
            if fault == "hang":
                await asyncio.sleep(self.hang_s)
                return False
            if fault == "reset":
                writer.transport.abort()
                return False
            self._write(writer, 200, None, raw=b'{"id": "x", "choices": [{"text": "trunc')
            return True
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        max_tokens = int(req.get("max_tokens") or 16)
        choices = []
        for i in range(n):
            text = reply_text(prompt, seed, i)
            words = text.split(" ")
            finish = "stop"
            if len(words) > max_tokens:
                text, finish = " ".join(words[:max_tokens]), "length"
            if chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
            else:
                choices.append({"index": i, "text": text, "finish_reason": finish, "logprobs": None})
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": sum(len(c.get("text", c.get("message", {}).get("content", "")).split()) for c in choices)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self._write(writer, 200, {"id": "cmpl", "object": "chat.completion" if chat else "text_completion",
                                  "created": 0, "model": req["model"], "choices": choices, "usage": usage})
        await writer.drain()
        return True


def main() -> None:
    ap = argparse.ArgumentParser(description="local OpenAI-compatible simulator")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--key", default="sk-test")
    a = ap.parse_args()
    srv = FakeOpenAIServer(latency_s=a.latency, fault_rate=a.fault_rate, key=a.key, port=a.port).start()
    print(srv.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
