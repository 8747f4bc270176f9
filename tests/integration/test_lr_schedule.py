"""train.lr_schedule reaches the optimizer: constant holds the rate after warm-up, linear and
cosine bring it down to 0 at the last step."""
import pytest

from cotdistill.config import TrainConfig
from cotdistill.methods.base import Pair
from cotdistill.students.presets import build_preset
from cotdistill.students.train import train_student

PAIRS = [Pair(f"Q: {i} plus {i}?\nA:", f" {2 * i}.") for i in range(8)]


def rates(tmp_path, schedule):
    model, tok, seq2seq = build_preset("tiny", seed=0)
    cfg = TrainConfig(max_steps=10, batch_size=4, learning_rate=1e-3, warmup_steps=2, eval_every=5,
                      lr_schedule=schedule)
    res = train_student(model, tok, seq2seq, PAIRS, PAIRS[:2], cfg, tmp_path / schedule)
    return [h["learning_rate"] for h in res.history if "learning_rate" in h]


def test_constant_holds_the_rate_after_warm_up(tmp_path):
    lr = rates(tmp_path, "constant")
    assert len(lr) == 10 and lr[0] < 1e-3 and all(r == pytest.approx(1e-3) for r in lr[2:])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_a_decaying_schedule_ends_near_zero(tmp_path, schedule):
    lr = rates(tmp_path, schedule)
    assert len(lr) == 10 and max(lr) == pytest.approx(1e-3)
    after = lr[lr.index(max(lr)):]
    assert all(a > b for a, b in zip(after, after[1:])) and after[-1] < 2e-4


def test_an_unknown_schedule_is_refused_by_name():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
