"""`cotdistill generate` killed with SIGKILL at 5 random moments and restarted each time ends with
data identical to an uninterrupted run, and sends no more requests than needed plus those in
flight at the kills."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from cotdistill.teachers.fake_server import FakeOpenAIServer

pytestmark = pytest.mark.slow
CONCURRENCY = 8


def config(tmp_path, url, out):
    cfg = tmp_path / f"{out}.yaml"
    cfg.write_text(f"""
task: {{name: arithmetic, n_train: 300, n_test: 10}}
teacher: {{backend: openai, model: teacher-1, base_url: "{url}", api_key_env: COTD_TEST_KEY,
          concurrency: {CONCURRENCY}, n_samples: 2, temperature: 0.7, timeout_s: 5}}
out: {tmp_path / out}
""")
    return cfg


def start(cfg):
    return subprocess.Popen([sys.executable, "-m", "cotdistill.cli", "generate", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COTD_TEST_KEY": "sk-test"})


def rows(db):
    try:
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5).execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_five_times_then_resume(tmp_path):
    needed = 300 * 2 * 2  # questions x samples x two stages
    rng = random.Random(7)
    with FakeOpenAIServer(latency_s=0.03) as srv:
        p = start(config(tmp_path, srv.url, "clean"))
        assert p.wait(300) == 0, p.stderr.read()[-2000:]
        assert srv.total == needed
        before = srv.total
        cfg = config(tmp_path, srv.url, "killed")
        db = tmp_path / "killed" / "teacher_cache.sqlite"
        kills, in_flight = 0, []
        while kills < 5:
            target = rng.randint(rows(db) + 1, rows(db) + (needed - rows(db)) // (6 - kills))
            p = start(cfg)
            while rows(db) < target and p.poll() is None:
                time.sleep(0.01)
            if p.poll() is not None:
                break  # finished before the chosen moment
            in_flight.append(srv.in_flight)
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        assert kills == 5
        assert not (tmp_path / "killed" / "rationales.jsonl").exists()  # nothing half-written passes as done
        p = start(cfg)
        assert p.wait(300) == 0, p.stderr.read()[-2000:]
        assert "answered from the cache" in p.stdout.read()  # the final summary
        sent = srv.total - before
    clean = (tmp_path / "clean" / "rationales.jsonl").read_text()
    assert (tmp_path / "killed" / "rationales.jsonl").read_text() == clean
    assert rows(db) == needed
    # never paid twice: at most what was needed plus what was on the wire at each kill
    assert sent <= needed + 5 * CONCURRENCY, (sent, in_flight)
    print(f"kill test: needed {needed}, sent {sent}, in flight at the kills {in_flight}")
