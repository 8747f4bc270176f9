"""Serving a trained student over HTTP (`cotdistill serve CONFIG`).

The student answers the way evaluation scores it: the same method, prompt, decoding (greedy) and
answer reading, so a served answer is the one `cotdistill evaluate` would have counted. Two APIs:
- `POST /v1/predict`: questions in, answers, rationales and the raw generation out;
- an OpenAI-compatible subset (`/v1/models`, `/v1/completions`, `/v1/chat/completions`), so any
  OpenAI client, cotdistill's own `openai` teacher backend included, can call the student.

Requests that arrive within `max_wait_ms` of each other are answered in one batch: on a CPU a
batch of 16 questions costs little more than one, and one worker keeps a single copy of the model
busy without two generations fighting over the cores.
"""
# No `from __future__ import annotations`: FastAPI reads the route functions' annotations, and
# the fastapi names they use are imported inside create_app.
import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import CotDistillError, DataError
from .tasks.files import entity_spans
from .tasks.schema import AnswerKind, Example, choices_from_question, format_choices

log = logging.getLogger(__name__)


class RequestError(CotDistillError):
    """A request the student cannot answer as sent (HTTP 4xx); the message names the field."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# -- the student behind the API ------------------------------------------------------------------
class Student:
    """A trained method's student, loaded once: turns request questions into examples and
    answers them with the method's own `predict`."""

    def __init__(self, run, method_name: str, model_dir: str | Path | None = None, *,
                 max_new_tokens: int | None = None, name: str | None = None):
        from . import hf

        if method_name not in run.cfg.methods:
            raise DataError(f"method {method_name!r} is not in this run's methods ({', '.join(run.cfg.methods)})")
        self.method_name = method_name
        self.name = name or method_name
        self.model_dir = run.folder.method(method_name).trained_model(model_dir)
        self.method, self.model, self.tok, self.seq2seq = run.load_method(method_name, self.model_dir)
        self.max_new_tokens = max_new_tokens or run.eval_max_new_tokens(method_name)
        self.batch_size = run.cfg.eval.batch_size
        self.input_limit = hf.input_limit(self.model, self.tok)
        self.default_kind = _run_kind(run.folder.test)

    def info(self) -> dict:
        return {"model": self.name, "method": self.method_name, "model_dir": str(self.model_dir),
                "student_kind": self.method.student_kind, "seq2seq": self.seq2seq,
                "default_kind": self.default_kind.value if self.default_kind else None,
                "max_new_tokens": self.max_new_tokens, "input_limit": self.input_limit}

    def example(self, q: "Question", index: int) -> Example:
        """One request question as the example the method reads; `questions[index]` names it in errors."""
        where = f"questions[{index}]"
        kind = q.kind or self.default_kind
        if kind is None:
            raise RequestError(f"{where}.kind: this run's test questions have more than one answer kind (or none "
                               f"on record), so each question must name its kind: "
                               f"{', '.join(k.value for k in AnswerKind)}")
        text, choices = q.question, q.choices
        if choices is not None:
            if len(choices) < 2 or not all(c.strip() for c in choices):
                raise RequestError(f"{where}.choices: give at least two non-empty options")
            if choices_from_question(text) is None:  # written into the question as the loaders do
                text = f"{text} {format_choices(choices)}"
        elif kind is AnswerKind.choice:
            choices = choices_from_question(text)
            if choices is None:
                raise RequestError(f"{where}.choices: a multiple-choice question needs `choices`, or its options "
                                   f"written in the question as '(A) ... (B) ...'")
        metadata = dict(q.metadata)
        if {"head_span", "tail_span"} & metadata.keys():
            try:
                metadata["head_span"], metadata["tail_span"] = entity_spans(text, metadata.get("head_span"),
                                                                            metadata.get("tail_span"), f"{where}.metadata")
            except DataError as e:
                raise RequestError(str(e)) from None
        # No method reads the gold at inference; the schema needs an answer, so it gets an empty one.
        return Example(id=q.id or f"request-{index}", question=text, answer="", kind=kind, choices=choices,
                       metadata=metadata)

    def check_lengths(self, examples: list[Example]) -> None:
        from .evaluate import overlong

        over = overlong(self.method, self.tok, self.seq2seq, examples, self.input_limit)
        if over:
            i = min(over)
            raise RequestError(f"questions[{i}]: the prompt is longer than the student reads "
                               f"({self.input_limit} tokens): shorten the question", status=413)

    def answer(self, examples: list[Example], max_new_tokens: int | None = None) -> list[dict]:
        """The method's predictions as response records (blocking: run it off the event loop)."""
        outs = self.method.predict(self.model, self.tok, self.seq2seq, examples,
                                   max_new_tokens=max_new_tokens or self.max_new_tokens, batch_size=self.batch_size)
        return [{"id": e.id, "question": e.question, "answer": o.parsed.answer, "rationale": o.parsed.rationale,
                 "generation": o.generated.text, "prompt_tokens": o.generated.prompt_tokens,
                 "generated_tokens": o.generated_tokens,
                 "finish_reason": o.generated.finish_reason, **o.extra} for e, o in zip(examples, outs)]


def _run_kind(test_file: Path) -> AnswerKind | None:
    """The answer kind of the run's test questions when they share one (a mixture has several)."""
    from .io import read_jsonl

    if not test_file.exists():
        return None
    kinds = {rec.get("kind") for _, rec in read_jsonl(test_file)}
    return AnswerKind(kinds.pop()) if len(kinds) == 1 and None not in kinds else None


# -- micro-batching -------------------------------------------------------------------------------
@dataclass
class _Job:
    examples: list[Example]
    max_new_tokens: int | None
    future: asyncio.Future


class Batcher:
    """Collects requests for up to `max_wait_s` (or until `max_batch` questions) and answers them
    together in one worker thread. A request whose client has gone is dropped before its batch runs."""

    def __init__(self, answer: Callable[[list[Example], int | None], list[dict]], *, max_batch: int = 32,
                 max_wait_s: float = 0.01):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_s >= 0")
        self.answer, self.max_batch, self.max_wait_s = answer, max_batch, max_wait_s
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.stats = {"requests": 0, "questions": 0, "batches": 0, "largest_batch": 0, "dropped": 0, "failed": 0}

    async def submit(self, examples: list[Example], max_new_tokens: int | None = None) -> list[dict]:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(examples, max_new_tokens, fut))
        return await fut

    async def _collect(self) -> list[_Job]:
        jobs = [await self.queue.get()]
        n = len(jobs[0].examples)
        deadline = time.perf_counter() + self.max_wait_s
        while n < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                job = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(self.queue.get(), left)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            n += len(job.examples)
        return jobs

    async def run(self) -> None:
        while True:
            jobs = await self._collect()
            live = [j for j in jobs if not j.future.done()]
            self.stats["dropped"] += len(jobs) - len(live)
            # One generation call per generation limit (OpenAI requests may set their own max_tokens).
            for limit in dict.fromkeys(j.max_new_tokens for j in live):
                group = [j for j in live if j.max_new_tokens == limit]
                exs = [e for j in group for e in j.examples]
                try:
                    recs = await asyncio.to_thread(self.answer, exs, limit)
                except Exception as e:  # the requests of this batch fail; the server keeps serving
                    self.stats["failed"] += len(group)
                    log.exception("a batch of %d questions failed", len(exs))
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                self.stats["batches"] += 1
                self.stats["largest_batch"] = max(self.stats["largest_batch"], len(exs))
                start = 0
                for j in group:
                    if not j.future.done():
                        j.future.set_result(recs[start:start + len(j.examples)])
                    start += len(j.examples)
                    self.stats["requests"] += 1
                    self.stats["questions"] += len(j.examples)


# -- request and response bodies ------------------------------------------------------------------
class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    choices: list[str] | None = None
    kind: AnswerKind | None = Field(None, description="answer kind; default: the run's, when its test questions share one")
    metadata: dict[str, Any] = Field(default_factory=dict, description="task fields a method reads, e.g. the "
                                     "entity spans `head_span` / `tail_span` of a relation question")
    id: str | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(min_length=1, description="questions, as objects or plain strings")

    @field_validator("questions", mode="before")
    @classmethod
    def _plain_strings(cls, v: Any) -> Any:
        return [{"question": q} if isinstance(q, str) else q for q in v] if isinstance(v, list) else v


class _OpenAIRequest(BaseModel):
    """The fields every OpenAI client may send; ones this server cannot honour are refused by name."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    n: int | None = Field(None, ge=1)
    stream: bool | None = None
    logprobs: Any = None

    def generation_limit(self, served: str, ceiling: int) -> int | None:
        """The max_tokens asked for, after refusing what this server cannot honour."""
        asked = self.max_completion_tokens or self.max_tokens
        if asked is not None and asked > ceiling:
            field = "max_completion_tokens" if self.max_completion_tokens else "max_tokens"
            raise RequestError(f"{field}: {asked} is over this server's generation limit of {ceiling} "
                               f"(`cotdistill serve --max-new-tokens`)")
        if self.model not in (None, served):
            raise RequestError(f"model: {self.model!r} is not served here; this server serves {served!r}", 404)
        if self.temperature:
            raise RequestError("temperature: the student decodes greedily, as evaluation scores it; send 0 or leave it out")
        if (self.n or 1) > 1:
            raise RequestError("n: greedy decoding gives one completion per prompt; send 1 or leave it out")
        if self.stream:
            raise RequestError("stream: streaming is not supported; send stream=false")
        if self.logprobs not in (None, False):
            raise RequestError("logprobs: not supported by this server")
        return asked


class CompletionRequest(_OpenAIRequest):
    prompt: str | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1)

    def question(self) -> str:
        """The one user message: the student answers single questions, not conversations."""
        users = [m for m in self.messages if m.role == "user"]
        others = sorted({m.role for m in self.messages} - {"user", "system", "developer"})
        if len(users) != 1 or others:
            raise RequestError("messages: the student answers one question: send one user message "
                               "(system messages are allowed and not part of its prompt)")
        content = users[0].content
        if isinstance(content, list):
            parts = [p.get("text") for p in content if p.get("type") == "text"]
            if len(parts) != len(content):
                raise RequestError("messages: only text content parts can be answered")
            content = "".join(p or "" for p in parts)
        if not content or not content.strip():
            raise RequestError("messages: the user message is empty")
        return content


# -- the app -------------------------------------------------------------------------------------
def create_app(student: Student, *, max_batch: int = 32, max_wait_ms: float = 10.0, max_questions: int = 256,
               api_key: str | None = None):
    """The FastAPI app serving `student`; `api_key` makes every route but /health ask for
    `Authorization: Bearer KEY`."""
    import contextlib

    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    batcher = Batcher(student.answer, max_batch=max_batch, max_wait_s=max_wait_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    app = FastAPI(title="cotdistill student", version=_version(), lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, e: RequestError):
        return JSONResponse({"error": {"message": str(e), "type": "invalid_request_error"}}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, e: RequestValidationError):
        """One line per problem, naming the field (`questions[1].kind: ...`), in the OpenAI error shape."""
        probs = "; ".join("body: not valid JSON" if x["type"] == "json_invalid" else f"{_where(x['loc'])}: {x['msg']}"
                          for x in e.errors())
        return JSONResponse({"error": {"message": probs, "type": "invalid_request_error"}}, status_code=422)

    @app.exception_handler(CotDistillError)
    async def _failed(request: Request, e: CotDistillError):
        return JSONResponse({"error": {"message": str(e), "type": "server_error"}}, status_code=500)

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": {"message": f"internal error ({type(e).__name__}: {e}); the server log has the "
                                                  "traceback", "type": "server_error"}}, status_code=500)

    def authorised(request: Request) -> None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            raise RequestError("missing or wrong API key: send `Authorization: Bearer KEY`", 401)

    async def answer(questions: list[Question], max_new_tokens: int | None = None) -> list[dict]:
        if len(questions) > max_questions:
            raise RequestError(f"questions: {len(questions)} in one request, over this server's limit of "
                               f"{max_questions} (--max-questions)", 413)
        examples = [student.example(q, i) for i, q in enumerate(questions)]
        student.check_lengths(examples)
        return await batcher.submit(examples, max_new_tokens)

    @app.get("/health")
    async def health():
        return {"status": "ok", **student.info(), "served": dict(batcher.stats)}

    @app.post("/v1/predict", dependencies=[Depends(authorised)])
    async def predict(body: PredictRequest):
        return {"model": student.name, "predictions": await answer(body.questions)}

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    async def models():
        return {"object": "list", "data": [{"id": student.name, "object": "model", "created": 0,
                                             "owned_by": "cotdistill"}]}

    @app.post("/v1/completions", dependencies=[Depends(authorised)])
    async def completions(body: CompletionRequest):
        limit = body.generation_limit(student.name, student.max_new_tokens)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts or not all(p.strip() for p in prompts):
            raise RequestError("prompt: give a non-empty question")
        recs = await answer([Question(question=p) for p in prompts], limit)
        choices = [{"index": i, "text": r["generation"], "logprobs": None, "finish_reason": _finish(r),
                    "cotdistill": _parsed(r)} for i, r in enumerate(recs)]
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": student.name, "choices": choices, "usage": _usage(recs)}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorised)])
    async def chat(body: ChatRequest):
        limit = body.generation_limit(student.name, student.max_new_tokens)
        (r,) = await answer([Question(question=body.question())], limit)
        choice = {"index": 0, "message": {"role": "assistant", "content": r["generation"]},
                  "finish_reason": _finish(r), "logprobs": None, "cotdistill": _parsed(r)}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": student.name, "choices": [choice], "usage": _usage([r])}

    return app


def _where(loc) -> str:
    """('body', 'questions', 1, 'kind') -> 'questions[1].kind'."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "body"


def _finish(rec: dict) -> Literal["stop", "length"]:
    return "length" if rec["finish_reason"] == "length" else "stop"


def _parsed(rec: dict) -> dict:
    """What cotdistill read out of the generation, beside the OpenAI fields."""
    return {"answer": rec["answer"], "rationale": rec["rationale"]}


def _usage(recs: list[dict]) -> dict:
    p, c = sum(r["prompt_tokens"] for r in recs), sum(r["generated_tokens"] for r in recs)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _version() -> str:
    from . import __version__

    return __version__


def serve(student: Student, *, host: str = "127.0.0.1", port: int = 8000, **app_options) -> None:
    """Blocks serving `student` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(student, **app_options), host=host, port=port, log_level="info")
