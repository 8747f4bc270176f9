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


# The task and teacher sections as every folder stamped them before each source and backend had its
# own options: all fields, whatever the source or backend.
OLD_TASK = {"source": "synthetic", "name": "arithmetic", "params": {}, "data_dir": None, "path": None,
            "test_path": None, "hf_train_split": "train", "hf_test_split": "test", "kind": None, "columns": {},
            "n_train": 40, "n_test": 10, "n_test_max": 0, "sample": "first", "seed": 0, "mixture": []}
OLD_TEACHER = {"backend": "exact", "model": None, "base_url": None, "api_key_env": "OPENAI_API_KEY",
               "endpoint": "completions", "requests_per_minute": None, "tokens_per_minute": None, "use_n": False,
               "price_prompt_per_1m": 0.0, "price_completion_per_1m": 0.0, "path": None, "prompt": "zero_shot_cot",
               "exemplars": None, "trigger": None, "n_samples": 1, "temperature": 0.0, "max_tokens": 256,
               "answer_max_tokens": 32, "seed": 0}


def test_folders_stamped_before_sources_and_backends_had_their_own_options_still_resume(tmp_path):
    over = [f"out={tmp_path}", "task.n_train=40", "task.n_test=10", "methods=[ft_cot]"]
    run = Run(load_config(None, over))
    run.data()
    (tmp_path / "data" / "task.json").write_text(json.dumps(OLD_TASK))
    run.check_training_setup("ft_cot")
    stamp = tmp_path / "ft_cot" / "train_fingerprint.json"
    (stamp.parent / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "teacher": OLD_TEACHER}))
    again = Run(load_config(None, over))
    again.data()
    again.check_training_setup("ft_cot")
    # a retired setting that held anything but its default was a different experiment
    (tmp_path / "data" / "task.json").write_text(json.dumps({**OLD_TASK, "kind": "number"}))
    with pytest.raises(ConfigError, match=r"different task \(differs in: kind\)"):
        Run(load_config(None, over)).data()
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "teacher": {**OLD_TEACHER, "model": "gpt-x"}}))
    with pytest.raises(ConfigError, match=r"differs in: teacher\.model\)"):
        Run(load_config(None, over)).check_training_setup("ft_cot")
