"""Pooling over seeds (the bench harness) and the answer-first bench's per-part figures (pure functions; the smoke run covers the rest)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
af = pytest.importorskip("answer_first")
harness = pytest.importorskip("harness")

from cotdistill.tasks.schema import Example  # noqa: E402


def _pred(i, correct, tokens=10, mode=None):
    p = {"id": f"q{i}", "correct": correct, "generated_tokens": tokens, "prediction": "1" if correct else None,
         "finish_reason": "stop", "seconds": 0.01}
    return {**p, "mode": mode} if mode else p


def test_pool_seeds_means_accuracy_and_pools_the_interval():
    seed0 = [_pred(i, i < 9) for i in range(10)]  # 90%
    seed1 = [_pred(i, i < 7, tokens=20) for i in range(10)]  # 70%
    rows = [{"accuracy": 90.0, "steps": 5}, {"accuracy": 70.0, "steps": 5}]
    out = harness.pool_seeds(rows, [seed0, seed1], "ft_cot")
    assert out["accuracy"] == 80.0 and out["seed_accuracies"] == [90.0, 70.0]
    assert out["seed_sd"] == pytest.approx(14.14, abs=0.01)
    assert out["mean_generated_tokens"] == 15.0 and out["steps"] == 5
    lo, hi = out["ci95"]
    assert lo < 80.0 < hi and hi - lo < 40  # 20 answers, narrower than one seed's 10 would give


def test_pool_seeds_single_seed_has_no_spread_and_keeps_routes():
    preds = [_pred(i, True, mode="post" if i < 3 else "pre") for i in range(10)]
    out = harness.pool_seeds([{"accuracy": 100.0, "steps": 1}], [preds], "adaptive")
    assert out["seed_sd"] == 0.0 and out["post_fraction"] == 0.3 and set(out["by_mode"]) == {"pre", "post"}


def test_by_part_pools_seeds_whose_ids_collide():
    """Each seed draws its own questions under the same ids: parts are looked up per seed."""
    def ex(i, part):
        return Example(id=f"q{i}", question="?", answer="1", kind="number", metadata={"part": part})

    t0 = [ex(0, 0), ex(1, 1)]
    t1 = [ex(0, 1), ex(1, 0)]  # same ids, parts swapped
    preds0 = {m: [_pred(0, True, mode="post"), _pred(1, False, mode="pre")] for m in af.METHODS}
    preds1 = {m: [_pred(0, False, mode="pre"), _pred(1, True, mode="post")] for m in af.METHODS}
    out = af.by_part([(t0, preds0), (t1, preds1)])
    assert out["0"]["ft_cot"]["accuracy"] == 100.0 and out["1"]["ft_cot"]["accuracy"] == 0.0
    assert out["0"]["adaptive"]["post_fraction"] == 1.0 and out["1"]["adaptive"]["post_fraction"] == 0.0
