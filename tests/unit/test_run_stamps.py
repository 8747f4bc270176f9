"""Run-folder stamps: a folder made under other settings is refused by name; one stamped before a
setting existed reads it as its default and resumes."""
import json

import pytest

from cotdistill.config import load_config
from cotdistill.errors import ConfigError
from cotdistill.pipeline import Run
from cotdistill.runs import _with_defaults


def test_missing_keys_take_their_defaults_at_any_depth_and_only_those():
    before = {"a": 1, "sub": {"x": 1}}
    current = {"a": 1, "sub": {"x": 1, "y": 2}, "new": 3}
    filled = _with_defaults(before, current, {"a": 9, "sub": {"x": 9, "y": 2}, "new": 3, "gone": 4})
    assert filled == current  # a present key keeps its stamped value; "gone" is not in current
    assert _with_defaults(before, current, {"sub": {"y": 5}})["sub"] == {"x": 1, "y": 5}


def test_method_options_added_later_resume_and_changed_ones_are_named(tmp_path):
    over = [f"out={tmp_path}", "methods=[step_by_step]"]
    Run(load_config(None, over)).check_training_setup("step_by_step")
    stamp = tmp_path / "step_by_step" / "train_fingerprint.json"
    (stamp.parent / "checkpoints" / "checkpoint-5").mkdir(parents=True)  # the stamp guards a trained checkpoint
    fp = json.loads(stamp.read_text())
    assert "alpha" in fp["method_options"] and "explain" not in fp["method_options"]  # inference options never count
    Run(load_config(None, [*over, "method_options={step_by_step: {explain: true}}"])).check_training_setup("step_by_step")
    del fp["method_options"]["alpha"], fp["train"]["lr_schedule"]
    stamp.write_text(json.dumps(fp))  # as if written before both settings existed
    Run(load_config(None, over)).check_training_setup("step_by_step")
    with pytest.raises(ConfigError, match=r"differs in: method_options\.alpha, train\.learning_rate\)"):
        Run(load_config(None, [*over, "method_options={step_by_step: {alpha: 0.3}}", "train.learning_rate=0.01"])
            ).check_training_setup("step_by_step")
