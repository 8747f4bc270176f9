"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: deterministic completions,
request counting, and scripted faults (a 500 or 429 on a prompt's first attempt, 401 on a bad key)."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply_for(prompt: str, seed) -> str:
    return " reply-" + hashlib.sha256(f"{prompt}|{seed}".encode()).hexdigest()[:8] + " The answer is 7."


class FakeOpenAI:
    def __init__(self, key: str = "sk-test", fail_first: str | None = None):
        self.key, self.fail_first = key, fail_first
        self.requests: Counter = Counter()
        self.seen_auth: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj, headers=()):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization", "")
                outer.seen_auth.append(auth)
                if auth != f"Bearer {outer.key}":
                    return self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                if body.get("model") != "teacher-1":
                    return self._send(404, {"error": {"message": f"model {body.get('model')} not found"}})
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                key = (prompt, body.get("seed"))
                outer.requests[key] += 1
                if outer.fail_first and outer.fail_first in prompt and outer.requests[key] == 1:
                    return self._send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
                text = reply_for(prompt, body.get("seed"))
                usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                         "total_tokens": 0}
                if chat:
                    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    obj = "chat.completion"
                else:
                    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                    obj = "text_completion"
                self._send(200, {"id": "x", "object": obj, "created": 0, "model": "teacher-1",
                                 "choices": [choice], "usage": usage})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.server.shutdown()
        self.server.server_close()

    @property
    def total(self) -> int:
        return sum(self.requests.values())
