"""`cotdistill serve`: a trained student answers over HTTP exactly as evaluation scored it, through
its own API and the OpenAI-compatible one (checked with the official client), with clear refusals
of what it cannot answer, and requests batched together."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cotdistill.config import load_config
from cotdistill.errors import DataError
from cotdistill.pipeline import Run
from cotdistill.serve import Batcher, Student, create_app
from cotdistill.tasks.schema import AnswerKind, Example

from .test_masked_methods import cfg_for

pytestmark = pytest.mark.slow
ENTRY = Path(sys.executable).parent / "cotdistill"
TINY = ["task.name=coin_flip", "task.params={n_people: 2}", "task.n_train=300", "task.n_test=24", "student.model=preset:tiny",
        "train.max_steps=60", "train.eval_every=30", "train.warmup_steps=10", "train.learning_rate=0.003",
        "eval.max_new_tokens=80", "methods=[direct, ft_cot]", "train.keep_checkpoints=false"]


# Session scope: an xdist worker that leaves this module for another and comes back would
# train a module-scoped run again (pytest tears module fixtures down when the module changes).
@pytest.fixture(scope="session")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "run"
    r = Run(load_config(None, [f"out={out}", *TINY]))
    r.run_all()
    return r


def _preds(run, method):
    return [json.loads(l) for l in (run.out / method / "predictions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def client(run):
    from fastapi.testclient import TestClient

    app = create_app(Student(run, "ft_cot"), max_questions=30, max_wait_ms=5)
    with TestClient(app) as c:  # `with`: the lifespan starts the batching worker
        yield c


@pytest.mark.parametrize("method", ["direct", "ft_cot"])
def test_served_answers_are_the_ones_evaluation_scored(run, method):
    from fastapi.testclient import TestClient

    preds = _preds(run, method)
    with TestClient(create_app(Student(run, method))) as c:
        r = c.post("/v1/predict", json={"questions": [p["question"] for p in preds]})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert [g["generation"] for g in got] == [p["generation"] for p in preds]
    assert [g["answer"] for g in got] == [p["prediction"] for p in preds]
    assert [g["generated_tokens"] for g in got] == [p["generated_tokens"] for p in preds]
    if method == "direct":  # it learns coin flips in 60 steps: the answers compared are real ones
        assert sum(p["correct"] for p in preds) >= len(preds) // 2


def test_one_question_and_the_health_probe(run, client):
    preds = _preds(run, "ft_cot")
    one = client.post("/v1/predict", json={"questions": [{"question": preds[0]["question"], "id": "q7"}]}).json()
    assert one["model"] == "ft_cot" and one["predictions"][0]["id"] == "q7"
    assert one["predictions"][0]["generation"] == preds[0]["generation"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["default_kind"] == "yes_no" and health["max_new_tokens"] == 80
    assert health["served"]["questions"] >= 1 and health["served"]["failed"] == 0


def test_openai_compatible_routes(run, client):
    q = _preds(run, "ft_cot")[0]
    chat = client.post("/v1/chat/completions", json={"model": "ft_cot", "temperature": 0, "messages": [
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": q["question"]}]}).json()
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"] == q["generation"]
    assert chat["choices"][0]["cotdistill"]["answer"] == q["prediction"]
    assert chat["usage"]["completion_tokens"] == q["generated_tokens"]
    parts = client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": [{"type": "text", "text": q["question"]}]}]}).json()
    assert parts["choices"][0]["message"]["content"] == q["generation"]
    comp = client.post("/v1/completions", json={"prompt": [q["question"], q["question"]]}).json()
    assert [c["text"] for c in comp["choices"]] == [q["generation"]] * 2 and comp["object"] == "text_completion"
    short = client.post("/v1/completions", json={"prompt": q["question"], "max_tokens": 3}).json()
    assert short["usage"]["completion_tokens"] <= 3 and short["choices"][0]["finish_reason"] in ("length", "stop")
    assert client.get("/v1/models").json()["data"][0]["id"] == "ft_cot"


@pytest.mark.parametrize("path,body,status,message", [
    ("/v1/predict", {"questions": []}, 422, "questions: List should have at least 1 item"),
    ("/v1/predict", {"questions": [{"question": "x", "kind": "bogus"}]}, 422, "questions[0].kind: Input should be"),
    ("/v1/predict", {"questions": [{"question": "x", "colour": 1}]}, 422, "questions[0].colour: Extra inputs"),
    ("/v1/predict", {"questions": [""]}, 422, "questions[0].question: String should have at least 1 character"),
    ("/v1/predict", {"questions": ["x"] * 31}, 413, "31 in one request, over this server's limit of 30"),
    ("/v1/predict", {"questions": ["word " * 3000]}, 413, "questions[0]: the prompt is longer than the student reads"),
    ("/v1/predict", {"questions": [{"question": "Which?", "kind": "choice"}]}, 400,
     "questions[0].choices: a multiple-choice question needs `choices`"),
    ("/v1/predict", {"questions": [{"question": "Which?", "choices": ["a"]}]}, 400, "at least two non-empty options"),
    ("/v1/predict", {"questions": [{"question": "Smoke from fire.", "metadata": {"head_span": [0, 5]}}]}, 400,
     "questions[0].metadata: field 'tail_span': expected [start, end) character offsets inside the text"),
    ("/v1/predict", {"questions": [{"question": "Smoke.", "metadata": {"head_span": [0, 5], "tail_span": [2, 40]}}]},
     400, "got [2, 40]"),
    ("/v1/completions", {"model": "gpt-4", "prompt": "x"}, 404, "'gpt-4' is not served here; this server serves 'ft_cot'"),
    ("/v1/completions", {"prompt": "x", "temperature": 0.7}, 400, "temperature: the student decodes greedily"),
    ("/v1/completions", {"prompt": "x", "n": 3}, 400, "n: greedy decoding gives one completion"),
    ("/v1/completions", {"prompt": "x", "stream": True}, 400, "stream: streaming is not supported"),
    ("/v1/completions", {"prompt": " "}, 400, "prompt: give a non-empty question"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 81}, 400, "max_tokens: 81 is over this server's generation limit of 80"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                           {"role": "user", "content": "c"}]}, 400, "send one user message"),
])
def test_requests_it_cannot_answer_are_refused_by_field(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]


def test_malformed_json_and_the_api_key(run):
    from fastapi.testclient import TestClient

    with TestClient(create_app(Student(run, "direct"), api_key="sekrit")) as c:
        assert c.post("/v1/predict", json={"questions": ["x"]}).status_code == 401
        assert c.get("/health").status_code == 200  # probes need no key
        ok = c.post("/v1/predict", json={"questions": ["x"]}, headers={"Authorization": "Bearer sekrit"})
        assert ok.status_code == 200 and ok.json()["model"] == "direct"
        bad = c.post("/v1/predict", content=b"{not json", headers={"Authorization": "Bearer sekrit",
                                                                     "content-type": "application/json"})
        assert bad.status_code == 422 and bad.json()["error"]["message"] == "body: not valid JSON"


def test_a_method_that_is_not_trained_or_not_in_the_run(run, tmp_path):
    with pytest.raises(DataError, match="'post' is not in this run's methods"):
        Student(run, "post")
    other = Run(load_config(None, [f"out={tmp_path}", *TINY]))
    with pytest.raises(DataError, match="'ft_cot' is not trained yet"):
        Student(other, "ft_cot")


def test_a_masked_lm_student_serves_its_labels(tmp_path):
    from fastapi.testclient import TestClient

    run = Run(cfg_for(tmp_path, ["cott"]))
    run.run_all()
    preds = _preds(run, "cott")
    with TestClient(create_app(Student(run, "cott"))) as c:
        got = c.post("/v1/predict", json={"questions": [p["question"] for p in preds]}).json()["predictions"]
    assert [g["answer"] for g in got] == [p["prediction"] for p in preds]
    assert [g["intermediate"] for g in got] == [p["intermediate"] for p in preds]


# -- batching --------------------------------------------------------------------------------------
def _ex(i: int) -> Example:
    return Example(id=str(i), question=f"q{i}", answer="", kind=AnswerKind.text)


def test_requests_arriving_together_share_a_batch_and_a_failure_fails_only_its_batch():
    calls = []

    def answer(exs, limit):
        calls.append([e.id for e in exs])
        if any(e.question == "boom" for e in exs):
            raise RuntimeError("boom")
        return [{"id": e.id, "limit": limit} for e in exs]

    async def main():
        b = Batcher(answer, max_batch=8, max_wait_s=0.05)
        worker = asyncio.create_task(b.run())
        got = await asyncio.gather(*(b.submit([_ex(i)]) for i in range(5)))
        assert [g[0]["id"] for g in got] == ["0", "1", "2", "3", "4"] and calls == [["0", "1", "2", "3", "4"]]
        # a generation limit of its own is answered in a call of its own, in the same collection
        a, c = await asyncio.gather(b.submit([_ex(5)]), b.submit([_ex(6)], max_new_tokens=3))
        assert a[0]["limit"] is None and c[0]["limit"] == 3 and calls[-2:] == [["5"], ["6"]]
        # one request over max_batch runs whole; small ones then fill batches of at most max_batch
        b.max_batch = 2
        big, *small = await asyncio.gather(b.submit([_ex(i) for i in range(10, 13)]),
                                           *(b.submit([_ex(i)]) for i in range(20, 24)))
        assert len(big) == 3 and [s[0]["id"] for s in small] == ["20", "21", "22", "23"]
        assert max(len(c) for c in calls[-3:]) <= 3 and len(calls) >= 6
        bad = Example(id="x", question="boom", answer="", kind=AnswerKind.text)
        with pytest.raises(RuntimeError, match="boom"):
            await b.submit([bad])
        assert (await b.submit([_ex(99)]))[0]["id"] == "99"  # the worker survived
        assert b.stats["failed"] == 1 and b.stats["requests"] == 5 + 2 + 5 + 1
        worker.cancel()

    asyncio.run(main())


def test_a_request_whose_client_left_is_dropped_before_its_batch_runs():
    seen = []

    async def main():
        b = Batcher(lambda exs, limit: seen.extend(e.id for e in exs) or [{} for _ in exs], max_wait_s=0.05)
        gone = asyncio.ensure_future(b.submit([_ex(1)]))
        await asyncio.sleep(0)  # queued
        gone.cancel()
        worker = asyncio.create_task(b.run())
        assert await b.submit([_ex(2)]) == [{}]
        assert seen == ["2"] and b.stats["dropped"] == 1
        worker.cancel()

    asyncio.run(main())


# -- the command, with the official OpenAI client -------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cli_serves_a_run_to_the_official_openai_client(run):
    openai = pytest.importorskip("openai")
    port = _free_port()
    cfg = run.out / "config.yaml"
    two = subprocess.run([str(ENTRY), "serve", str(cfg)], capture_output=True, text=True, timeout=120)
    assert two.returncode == 2 and "trains 2 methods (direct, ft_cot): pick one with --method" in two.stderr
    proc = subprocess.Popen([str(ENTRY), "serve", str(cfg), "--method", "ft_cot", "--port", str(port), "--name", "tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COTDISTILL_API_KEY": "k"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else ""
            time.sleep(0.5)
        q = _preds(run, "ft_cot")[1]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": q["question"]}])
        assert chat.choices[0].message.content == q["generation"]
        comp = client.completions.create(model="tiny", prompt=q["question"])
        assert comp.choices[0].text == q["generation"] and comp.usage.completion_tokens == q["generated_tokens"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
        with pytest.raises(openai.BadRequestError, match="temperature"):
            client.completions.create(model="tiny", prompt="x", temperature=1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), out[-2000:]
    assert "serving tiny (ft_cot student" in out
