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
