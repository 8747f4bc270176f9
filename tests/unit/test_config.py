import pytest

from cotdistill.config import load_config
from cotdistill.errors import ConfigError
from cotdistill.registry import Registry


def test_defaults_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  max_steps: 10\nmethods: [ft_cot]\n")
    cfg = load_config(p, ["train.max_steps=20", "task.params={n_ops: 4}", "teacher.seed=null"])
    assert cfg.train.max_steps == 20 and cfg.methods == ["ft_cot"]
    assert cfg.task.params == {"n_ops": 4} and cfg.teacher.seed is None


def test_errors_are_collected_and_name_the_field(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  max_step: 10\n  batch_size: -1\nteacher:\n  backend: openai\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "train.max_step" in msg and "unknown key" in msg and "train.batch_size" in msg and "teacher" in msg


def test_unknown_method_did_you_mean():
    with pytest.raises(ConfigError, match="Did you mean 'ft_cot'"):
        load_config(None, ["methods=[ft_cott]"])


def test_bad_yaml_names_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  max_steps: [1,\n")
    with pytest.raises(ConfigError, match=r"c.yaml:\d+: invalid YAML"):
        load_config(p)


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="not found"):
        load_config("nope.yaml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["train.max_steps"])


def test_registry_rejects_duplicates():
    r: Registry = Registry("thing")
    r.register("a")(1)
    with pytest.raises(ValueError):
        r.register("a")(2)
    assert r.get("a") == 1 and "a" in r


def test_recipe_fills_only_unset_keys_and_epochs_set_the_steps():
    cfg = load_config(None, ["train.recipe=pretrained", "train.learning_rate=3e-4"])
    assert cfg.train.learning_rate == 3e-4 and cfg.train.batch_size == 16 and cfg.train.epochs == 20
    assert cfg.train.steps_for(258) == 323 and cfg.train.steps_for(1) == 2
    assert load_config(None, []).train.recipe is None and load_config(None, []).train.steps_for(258) == 1000


def test_pretrained_students_default_to_the_pretrained_recipe():
    cfg = load_config(None, ["student.model=pretrained:minilm-seq2seq"])
    assert cfg.train.recipe == "pretrained" and cfg.train.learning_rate == 1e-4
    cfg = load_config(None, ["student.model=pretrained:minilm-seq2seq", "train.recipe=scratch"])
    assert cfg.train.learning_rate == 2e-3 and cfg.train.epochs is None


@pytest.mark.parametrize("model,recipe", [
    ("preset:tiny", None),
    ("pretrained:minilm-causal", "pretrained"),
    ("pretrained:smollm2-135m", "pretrained_lm"),
    ("gpt2", "pretrained_lm"),                      # a hub id: pretrained weights
    ("runs/some/ft_cot/model", "pretrained_lm"),    # a local folder: trained weights
])
def test_every_student_with_pretrained_weights_gets_a_pretrained_recipe(model, recipe):
    from cotdistill.config import RECIPES

    cfg = load_config(None, [f"student.model={model}"])
    assert cfg.train.recipe == recipe
    expected = RECIPES[recipe]["learning_rate"] if recipe else 2e-3  # never the from-scratch rate on real weights
    assert cfg.train.learning_rate == expected
    named = load_config(None, [f"student.model={model}", "train.recipe=scratch", "train.bf16=false"])
    assert named.train.recipe == "scratch" and named.train.learning_rate == 2e-3 and named.train.bf16 is False


def test_pretrained_lm_recipe_trains_in_bf16_where_the_hardware_has_it(monkeypatch):
    import torch

    from cotdistill.students import train

    cfg = load_config(None, ["student.model=gpt2"]).train
    assert cfg.bf16 == "native"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native in (True, False):
        monkeypatch.setattr(train, "native_cpu_bf16", lambda: native)
        assert train.bf16_enabled(cfg) is native
    assert train.bf16_enabled(load_config(None, []).train) is False  # from scratch on the CPU: fp32


def test_validate_says_which_recipe_a_run_uses(tmp_path):
    from typer.testing import CliRunner

    from cotdistill.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"out: {tmp_path / 'run'}\nmethods: [direct]\n")
    r = CliRunner().invoke(app, ["validate", str(cfg)])
    assert r.exit_code == 0 and "train.recipe: none (the from-scratch defaults" in r.output
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    r = CliRunner().invoke(app, ["validate", str(cfg), "--set", f"student.model={folder}"])
    assert "train.recipe: pretrained_lm (pretrained language models" in r.output
    from cotdistill.config import RECIPES

    assert f"learning_rate {RECIPES['pretrained_lm']['learning_rate']:g}" in " ".join(r.output.split())


def test_set_errors_name_the_set_and_suggest_the_near_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  batch_size: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, ["train.lr=0.1", "task.n_train=abc"])
    msg = str(e.value)
    assert "--set train.lr=0.1: `train.lr`: unknown key (not a config field); did you mean `train.learning_rate`?" in msg
    assert "--set task.n_train=abc: `task.n_train`" in msg and f"{p}:" not in msg
    with pytest.raises(ConfigError, match="did you mean `train.max_steps`"):
        load_config(p, ["train.max_step=3"])
    p.write_text("train:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError, match=f"{p}: `train.max_stepz`"):
        load_config(p)


def test_config_that_is_a_folder_or_not_utf8(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "c.yaml"
    p.write_bytes(b"out: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(None, ["task.params={a: [1"])


def test_an_explicit_step_budget_wins_over_the_recipe_epochs():
    cfg = load_config(None, ["student.model=pretrained:minilm-seq2seq", "train.max_steps=3"])
    assert cfg.train.epochs is None and cfg.train.steps_for(500) == 3 and cfg.train.learning_rate == 1e-4


def test_a_tracker_that_is_not_installed_is_named_with_its_install_command(monkeypatch):
    import importlib.util

    from cotdistill.checks import problems

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    cfg = load_config(None, ["train.report_to=[tensorboard, wandb]"])
    found = problems(cfg, ["train"])
    assert found == ["`train.report_to`: wandb is not installed (pip install 'cotdistill[wandb]')"]
