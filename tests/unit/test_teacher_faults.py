"""The hardened OpenAI-compatible backend against a real local HTTP server injecting faults."""
import sqlite3

import pytest

from cotdistill.errors import TeacherError
from cotdistill.teachers.base import GenParams, Request
from cotdistill.teachers.cache import CachedTeacher, CompletionCache
from cotdistill.teachers.fake_server import FakeOpenAIServer, reply_text
from cotdistill.teachers.openai_http import OpenAITeacher, retry_after_s


def teacher(url, **kw):
    kw = {"concurrency": 64, "max_retries": 8, "timeout_s": 0.5, "backoff_base_s": 0.02, "backoff_max_s": 0.2, **kw}
    return OpenAITeacher("teacher-1", url, "COTD_TEST_KEY", **kw)


def requests_(n_prompts=1000, samples=2):
    p = GenParams(temperature=0.7, max_tokens=64, seed=11)
    return [Request(f"Q: question {i}\nA: Let's think step by step.", p, s) for i in range(n_prompts) for s in range(samples)]


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("COTD_TEST_KEY", "sk-test")


@pytest.mark.slow
def test_2000_completions_under_faults_equal_a_fault_free_run(tmp_path):
    reqs = requests_()
    with FakeOpenAIServer(fault_rate=0.25, hang_s=1.0) as bad:
        t = CachedTeacher(teacher(bad.url), CompletionCache(tmp_path / "faulty.sqlite"))
        got = t.complete(reqs)
        faults = dict(bad.faults)
        sent = bad.total
        # a resumed run over the full store asks for nothing
        again = CachedTeacher(teacher(bad.url), CompletionCache(tmp_path / "faulty.sqlite"))
        assert [c.text for c in again.complete(reqs)] == [c.text for c in got]
        assert bad.total == sent and again.summary()["requests_needed"] == 0
    with FakeOpenAIServer() as good:
        clean = CachedTeacher(teacher(good.url), CompletionCache(tmp_path / "clean.sqlite")).complete(reqs)
    assert sum(faults.values()) >= 0.2 * len(reqs), faults  # >= 20% of requests saw a fault
    assert set(faults) == {"429", "500", "503", "hang", "reset", "malformed"}
    assert all(c is not None for c in got)  # 0 lost
    assert [c.text for c in got] == [c.text for c in clean]  # identical to the fault-free run
    assert [c.text for c in got] == [reply_text(r.prompt, r.seed) for r in reqs]
    rows = sqlite3.connect(tmp_path / "faulty.sqlite").execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM completions").fetchone()
    assert rows == (2000, 2000)  # 0 duplicated
    s = t.summary()
    retries = s["retries"]
    assert s["requests_needed"] == 2000 and s["http_requests_sent"] == 2000 + sum(retries.values())
    # Every injected fault was retried once, under the name of its kind. On a loaded machine a slow answer
    # can also pass the test's 0.5 s timeout (a timeout), or its connection can be dropped while the client
    # gives up on it (a connection error): such extras are allowed, but few.
    for code in ("429", "500", "503"):
        assert retries.get(f"HTTP {code}", 0) == faults[code], (code, retries, faults)
    assert retries.get("malformed response body", 0) == faults["malformed"], (retries, faults)
    dropped = sum(v for k, v in retries.items() if k.startswith("connection error"))
    assert set(retries) <= {"HTTP 429", "HTTP 500", "HTTP 503", "malformed response body", "timeout"} | {
        k for k in retries if k.startswith("connection error")}, retries
    # A hang normally ends in the client's timeout; on a loaded machine the server's hang can end
    # first and close the connection, so that hang is retried as a connection error instead.
    assert retries.get("timeout", 0) + dropped >= faults["hang"] + faults["reset"], (retries, faults)
    assert dropped >= faults["reset"], (retries, faults)
    extra = retries.get("timeout", 0) + dropped - faults["hang"] - faults["reset"]
    assert extra <= 0.05 * len(reqs), (retries, faults)
    # The server counts a request once it has read it whole; one the client gave up on before
    # that (one of the extras) is sent but never counted.
    assert 0 <= s["http_requests_sent"] - sent <= extra, (s["http_requests_sent"], sent, extra)


def test_concurrency_is_bounded_and_n_is_used_when_asked(tmp_path):
    reqs = requests_(40, samples=4)
    with FakeOpenAIServer(latency_s=0.05) as srv:
        out = teacher(srv.url, concurrency=8).complete(reqs)
        assert srv.max_in_flight <= 8 and srv.total == 160
    with FakeOpenAIServer() as srv:
        t = teacher(srv.url, use_n=True)
        out_n = t.complete(reqs)
        assert srv.total == 40 and all(k[2] == 4 for k in srv.attempts)  # one request with n=4 per prompt
    assert [c.text for c in out_n[:4]] == [reply_text(reqs[0].prompt, 11, i) for i in range(4)]
    assert out[1].text == reply_text(reqs[1].prompt, 12)  # separate requests: seed + sample index


def test_fatal_errors_stop_at_once_and_the_key_is_never_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("COTD_TEST_KEY", "sk-very-secret-123")
    with FakeOpenAIServer() as srv:
        t = CachedTeacher(teacher(srv.url), CompletionCache(tmp_path / "c.sqlite"))
        with pytest.raises(TeacherError) as e:
            t.complete(requests_(50))
        assert "refused the API key (HTTP 401)" in str(e.value) and "sk-very-secret" not in str(e.value)
        assert srv.total <= 64  # stopped at once, not after 100 requests
    monkeypatch.setenv("COTD_TEST_KEY", "sk-test")
    with FakeOpenAIServer() as srv:
        with pytest.raises(TeacherError, match="does not serve model 'nope'"):
            OpenAITeacher("nope", srv.url, "COTD_TEST_KEY").complete(requests_(3))
    store = (tmp_path / "c.sqlite").read_bytes()
    assert b"sk-very-secret" not in store and "sk-very-secret" not in caplog.text


def test_retries_give_up_with_a_clear_message():
    with FakeOpenAIServer(fault_rate=1.0, max_faults_per_request=100) as srv:
        with pytest.raises(TeacherError, match="failed 3 times; last error"):
            teacher(srv.url, max_retries=2).complete(requests_(1, 1))


def test_rate_limit_slows_requests():
    import time

    with FakeOpenAIServer() as srv:
        t0 = time.perf_counter()
        teacher(srv.url, requests_per_minute=600).complete(requests_(8, 1))  # bucket of 600 starts full
        fast = time.perf_counter() - t0
        t = teacher(srv.url, requests_per_minute=60)
        t0 = time.perf_counter()
        t.complete(requests_(62, 1))  # 60 in the bucket, then 1 per second
        assert time.perf_counter() - t0 >= 1.5 > fast


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "2"}, 2.0), ({"retry-after-ms": "150"}, 0.15), ({"retry-after": "0.5"}, 0.5), ({}, None),
])
def test_retry_after_parsing(headers, expected):
    import httpx

    assert retry_after_s(httpx.Headers(headers)) == expected


def test_truncated_completions_are_flagged(tmp_path):
    with FakeOpenAIServer() as srv:
        t = CachedTeacher(teacher(srv.url), CompletionCache(tmp_path / "c.sqlite"))
        out = t.complete([Request("Q: x\nA:", GenParams(max_tokens=2))])
    assert out[0].finish_reason == "length" and t.summary()["truncated"] == 1
