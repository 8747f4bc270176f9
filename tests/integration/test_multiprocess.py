"""Training beyond one process: `accelerate launch` with 2 CPU processes (DDP over gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def launch(n: int, *args: str) -> subprocess.CompletedProcess:
    # `--multi_gpu` is accelerate's multi-process launcher (torchrun); without GPUs it runs DDP over
    # gloo on the CPU. (`--cpu` would start one process.)
    cmd = ([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
           if n > 1 else [sys.executable, *args])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_two_processes_follow_the_one_process_loss_curve(tmp_path):
    """Same global batch (8 = 1 x 8 = 2 x 4): the same examples per step, the loss averaged over the
    batch's target tokens across processes. Only float sums run in another order, so the curves
    agree to 1e-4 (relative) per step, not bit for bit."""
    script = str(HERE / "scripts/train_pairs.py")
    launch(1, script, str(tmp_path / "one"), "8")
    launch(2, script, str(tmp_path / "two"), "4")
    one = json.loads((tmp_path / "one/curve.json").read_text())
    two = json.loads((tmp_path / "two/curve.json").read_text())
    assert two["world"] == "2" and one["world"] == "1"
    assert len(one["loss"]) == len(two["loss"]) == 8
    assert one["loss"][-1] < one["loss"][0] - 1.0  # it learns
    for a, b in zip(one["loss"], two["loss"]):
        assert abs(a - b) <= 1e-4 * a, (one["loss"], two["loss"])
    assert abs(one["val"] - two["val"]) <= 1e-4 * one["val"]


def test_a_whole_run_under_accelerate_launch(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""out: {tmp_path}
task: {{name: last_letters, n_train: 64, n_test: 16}}
student: {{model: "preset:tiny"}}
train: {{max_steps: 6, eval_every: 3, warmup_steps: 0, batch_size: 4, threads: 1}}
eval: {{max_new_tokens: 40}}
""")
    launch(2, "-m", "cotdistill.cli", "run", str(cfg))
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["methods"]) == {"direct", "ft_cot"} and s["n_test"] == 16
    for m in ("direct", "ft_cot"):
        assert len((tmp_path / m / "predictions.jsonl").read_text().splitlines()) == 16  # written once
        assert json.loads((tmp_path / m / "train_info.json").read_text())["steps"] == 6
    assert len((tmp_path / "rationales.jsonl").read_text().splitlines()) == 64  # one teacher pass
