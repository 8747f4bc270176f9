"""`cotdistill run` killed with SIGKILL during training at random steps, then rerun, ends with the
same student as an uninterrupted run with the same seed: the same validation loss (within 1e-6)
and the same test predictions."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow
STEPS, EVERY = 60, 10


def config(tmp_path, name):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"""
task: {{name: last_letters, n_train: 240, n_test: 16}}
methods: [ft_cot]
student: {{model: "preset:tiny"}}
train: {{max_steps: {STEPS}, eval_every: {EVERY}, batch_size: 16, warmup_steps: 5, threads: 1}}
eval: {{max_new_tokens: 60}}
out: {tmp_path / name}
""")
    return cfg


def start(cfg, *flags):
    return subprocess.Popen([sys.executable, "-m", "cotdistill.cli", "run", str(cfg), *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def saved_steps(out):
    ck = out / "ft_cot" / "checkpoints"
    return [int(p.name.split("-")[1]) for p in ck.glob("checkpoint-*") if (p / "trainer_state.json").exists()] \
        if ck.is_dir() else []


def result(out):
    info = json.loads((out / "ft_cot" / "train_info.json").read_text())
    preds = [json.loads(l) for l in (out / "ft_cot" / "predictions.jsonl").read_text().splitlines()]
    return info, [(p["id"], p["generation"], p["prediction"]) for p in preds]


def test_training_killed_at_random_steps_resumes_to_the_same_model(tmp_path):
    p = start(config(tmp_path, "clean"))
    assert p.wait(600) == 0, p.stderr.read()[-2000:]
    clean_info, clean_preds = result(tmp_path / "clean")

    rng = random.Random(3)
    cfg, out = config(tmp_path, "killed"), tmp_path / "killed"
    kill_steps = []
    for target in sorted(rng.sample(range(EVERY, STEPS - EVERY + 1, EVERY), 2)):
        p = start(cfg)
        while max(saved_steps(out), default=0) < target and p.poll() is None:
            time.sleep(0.02)
        assert p.poll() is None, "training finished before the kill"
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere between two checkpoints
        p.send_signal(signal.SIGKILL)
        p.wait()
        kill_steps.append(max(saved_steps(out)))
    assert not (out / "ft_cot" / "train_info.json").exists()  # nothing passes as finished
    p = start(cfg, "-v")
    assert p.wait(600) == 0, p.stderr.read()[-2000:]
    # it resumed from the last checkpoint rather than starting over (which would match too); the
    # log may fold a long path (pytest-xdist's folders are longer), so whitespace is ignored
    log = "".join(p.stderr.read().split())
    assert "resumingfrom" in log and f"checkpoint-{kill_steps[-1]}" in log, (kill_steps, log[-1500:])
    info, preds = result(out)
    assert info["steps"] == clean_info["steps"] == STEPS
    assert abs(info["best_val_loss"] - clean_info["best_val_loss"]) <= 1e-6, (info, clean_info, kill_steps)
    assert info["best_step"] == clean_info["best_step"]
    assert preds == clean_preds
    assert len(kill_steps) == 2 and all(0 < s < STEPS for s in kill_steps)
