import sqlite3

import pytest

from cotdistill.errors import CacheError, TeacherError
from cotdistill.tasks.synthetic import make_synthetic
from cotdistill.teachers.base import GenParams, Request
from cotdistill.teachers.cache import CachedTeacher, CompletionCache, request_key
from cotdistill.teachers.exact import ExactTeacher
from cotdistill.teachers.generate import generate_rationales
from cotdistill.teachers.openai_http import OpenAITeacher
from cotdistill.teachers.prompting import FewShotCoT, Exemplar, ZeroShotCoT, load_few_shot

from cotdistill.teachers.fake_server import FakeOpenAIServer, reply_text


def test_zero_shot_cot_prompts_and_triggers():
    ex = make_synthetic("multiplication").generate(1)[0]
    z = ZeroShotCoT()
    assert z.stage1(ex) == f"Q: {ex.question}\nA: Let's think step by step."
    assert z.stage2(ex, " r.").endswith("step by step. r.\nTherefore, the answer (arabic numerals) is")
    so = make_synthetic("shuffled_objects").generate(1)[0]
    assert z.stage2(so, " r").endswith("among A through C, the answer is")


def test_exact_teacher_two_stage_and_few_shot():
    task = make_synthetic("arithmetic")
    exs = task.generate(5)
    t = ExactTeacher("arithmetic")
    recs = generate_rationales(exs, t, ZeroShotCoT())
    for r, e in zip(recs, exs):
        assert r["rationale"] == e.metadata["rationale"] and r["answer_text"].strip() == f"{e.answer}."
    fs = FewShotCoT.from_exemplars([Exemplar("Compute 1 + 1, left to right.", "1 + 1 = 2.", "2")])
    recs = generate_rationales(exs, t, fs)
    assert recs[0]["rationale"] == exs[0].metadata["rationale"] and recs[0]["answer_text"].strip() == f"{exs[0].answer}."


def test_cache_keys_differ_by_model_params_and_sample():
    r = Request("p", GenParams(temperature=0.7), 0)
    a = request_key({"model": "m1"}, r)
    assert a != request_key({"model": "m2"}, r)
    assert a != request_key({"model": "m1"}, Request("p", GenParams(temperature=0.7), 1))
    assert a != request_key({"model": "m1"}, Request("p", GenParams(temperature=0.5), 0))
    assert a == request_key({"model": "m1"}, Request("p", GenParams(temperature=0.7), 0))


class Counting(ExactTeacher):
    def __init__(self):
        super().__init__("arithmetic")
        self.sent = 0

    def _complete(self, requests, progress=None):
        self.sent += len(requests)
        return super()._complete(requests, progress)


def test_cache_persists_and_resume_asks_only_for_missing(tmp_path):
    exs = make_synthetic("arithmetic").generate(10)
    inner = Counting()
    first = generate_rationales(exs[:6], CachedTeacher(inner, CompletionCache(tmp_path / "c.sqlite")), ZeroShotCoT(),
                                n_samples=2)
    assert inner.sent == 6 * 2 * 2
    inner2 = Counting()  # a new process: fresh teacher, same cache file
    again = generate_rationales(exs, CachedTeacher(inner2, CompletionCache(tmp_path / "c.sqlite")), ZeroShotCoT(),
                                n_samples=2)
    assert inner2.sent == 4 * 2 * 2  # only the 4 new questions
    assert again[:12] == first


def test_corrupt_cache_is_a_clear_error(tmp_path):
    p = tmp_path / "c.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="not a usable cache"):
        CompletionCache(p)


def test_cache_schema_version_recorded(tmp_path):
    CompletionCache(tmp_path / "c.sqlite").close()
    assert sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA user_version").fetchone()[0] == 2


def test_few_shot_file_loading(tmp_path, shared_data):
    fs = load_few_shot(str(shared_data / "finetune-cot/few_shot_cot_prompts.json"), "coin_flip")
    ex = make_synthetic("coin_flip").generate(1)[0]
    assert fs.stage1(ex).endswith(f"Q: {ex.question}\nA:") and "The answer is yes." in fs.stage1(ex)


# -- the OpenAI-compatible backend against a real local HTTP server ---------------------------------

@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_openai_backend_real_http(monkeypatch, endpoint):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    # every request fails once (a fault of any kind), then succeeds on its retry
    with FakeOpenAIServer(fault_rate=1.0, max_faults_per_request=1, hang_s=1.0, retry_after="0") as srv:
        t = OpenAITeacher("teacher-1", srv.url, "TEST_KEY", endpoint, concurrency=4, max_retries=3, timeout_s=0.5,
                          backoff_base_s=0.01)
        reqs = [Request(f"prompt {i}", GenParams(temperature=0.7, seed=5), i % 2) for i in range(12)]
        out = t.complete(reqs)
        t.close()
    assert [c.text for c in out] == [reply_text(r.prompt, r.seed) for r in reqs]
    assert out[0].prompt_tokens == 2 and out[0].finish_reason == "stop"
    assert srv.total == 24 and sum(srv.faults.values()) == 12  # 12 + one retry each
    assert srv.auth_seen == {"Bearer sk-test"}


def test_openai_backend_fatal_errors_and_secret_never_shown(monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-wrong-secret")
    with FakeOpenAIServer() as srv:
        t = OpenAITeacher("teacher-1", srv.url, "TEST_KEY", max_retries=0)
        with pytest.raises(TeacherError) as e:
            t.complete([Request("p")])
        assert "refused the API key" in str(e.value) and "sk-wrong-secret" not in str(e.value)
        monkeypatch.setenv("TEST_KEY", "sk-test")
        t = OpenAITeacher("no-such-model", srv.url, "TEST_KEY", max_retries=0)
        with pytest.raises(TeacherError, match="no-such-model"):
            t.complete([Request("p")])


def test_openai_backend_missing_key_and_dead_endpoint(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(TeacherError, match=r"\$NOPE_KEY is not set"):
        OpenAITeacher("m", "http://127.0.0.1:9/v1", "NOPE_KEY")
    t = OpenAITeacher("m", "http://127.0.0.1:9/v1", None, max_retries=0, timeout_s=2)
    with pytest.raises(TeacherError, match="cannot reach"):
        t.complete([Request("p")])


def test_cached_teacher_reports_every_result_to_on_result(tmp_path):
    exs = make_synthetic("arithmetic").generate(4)
    reqs = [Request(ZeroShotCoT().stage1(e)) for e in exs]
    cache = CompletionCache(tmp_path / "c.sqlite")
    CachedTeacher(ExactTeacher("arithmetic"), cache).complete(reqs[:2])  # two already stored
    seen = {}
    out = CachedTeacher(ExactTeacher("arithmetic"), cache).complete(reqs, on_result=lambda i, c: seen.setdefault(i, c))
    assert sorted(seen) == [0, 1, 2, 3] and [seen[i].text for i in range(4)] == [c.text for c in out]
    assert seen[0].cached and not seen[3].cached
