"""LoRA students and unseen-task evaluation (zero-shot and k-shot adaptation on BIG-bench tasks)."""
import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from cotdistill.config import load_config
from cotdistill.errors import ConfigError, DataError
from cotdistill.pipeline import Run
from cotdistill.unseen import chance, evaluate_unseen

pytestmark = pytest.mark.slow


def lora_cfg(out, *extra):
    return load_config(None, [f"out={out}", "task.name=last_letters", "task.n_train=60",
                              "task.n_test=8", "methods=[ft_cot]", "train.max_steps=6", "train.eval_every=3",
                              "train.batch_size=8", "eval.max_new_tokens=8", "student.lora={r: 4}", *extra])


def test_lora_trains_adapters_only_and_saves_a_plain_model(tmp_path):
    s = Run(lora_cfg(tmp_path / "run")).run_all()
    info = json.loads((tmp_path / "run/ft_cot/train_info.json").read_text())
    full = Run(lora_cfg(tmp_path / "full", "student.lora=null")).run_all()
    full_info = json.loads((tmp_path / "full/ft_cot/train_info.json").read_text())
    assert 0 < info["trainable_parameters"] < full_info["trainable_parameters"] / 5
    weights = load_file(str(tmp_path / "run/ft_cot/model/model.safetensors"))
    assert not [k for k in weights if "lora" in k]  # merged: loads with no peft
    assert set(weights) == set(load_file(str(tmp_path / "full/ft_cot/model/model.safetensors")))
    assert s["methods"]["ft_cot"]["steps"] == 6 and full["methods"]["ft_cot"]["steps"] == 6
    # a rerun resumes from the finished adapter checkpoint: the same merged weights
    Run(lora_cfg(tmp_path / "run")).run_all()
    again = load_file(str(tmp_path / "run/ft_cot/model/model.safetensors"))
    assert all((weights[k] == again[k]).all() for k in weights)


def test_lora_is_refused_for_methods_that_own_their_module(tmp_path):
    cfg = lora_cfg(tmp_path / "run", "student.model=preset:bert-tiny", "methods=[prompt_tuning]",
                   "task.source=file", f"task.path={_labels(tmp_path)}", "task.kind=label", "task.n_test=4")
    with pytest.raises(ConfigError, match="student.lora`: prompt_tuning train a module of their own"):
        Run(cfg).run_all()


def _labels(tmp_path):
    p = tmp_path / "labels.jsonl"
    p.write_text("\n".join(json.dumps({"id": str(i), "question": f"text {i}", "answer": f"a.{'xy'[i % 2]}"})
                           for i in range(30)))
    return p


def _bigbench_task(folder, n=60, choice=True):
    folder.mkdir(parents=True)
    if choice:
        exs = [{"input": f"Is {i} even?", "target_scores": {"yes": int(i % 2 == 0), "no": int(i % 2 == 1)}} for i in range(n)]
    else:
        exs = [{"input": f"What is {i} plus one?", "target": str(i + 1)} for i in range(n)]
    (folder / "task.json").write_text(json.dumps({"name": folder.name, "examples": exs}))
    return folder


@pytest.fixture
def student(tmp_path):
    Run(lora_cfg(tmp_path / "student", "student.lora=null", "methods=[cot_tuning_direct]")).run_all()
    return tmp_path / "student/cot_tuning_direct/model"


def test_unseen_zero_and_k_shot_on_the_same_questions(tmp_path, student):
    tasks = [_bigbench_task(tmp_path / "bb/parity"), _bigbench_task(tmp_path / "bb/plus_one", choice=False)]
    s = evaluate_unseen(str(student), tasks, tmp_path / "unseen", shots=[0, 4, 8], n_eval=20, reserve=8,
                        overrides=["train.max_steps=2", "train.batch_size=4", "eval.max_new_tokens=8"])
    assert set(s["per_task"]) == {"parity", "plus_one"} and s["settings"] == ["zero_shot", "k4", "k8"]
    assert s["per_task"]["parity"]["chance"] == 50.0 and s["per_task"]["plus_one"]["chance"] == 0.0
    assert s["chance"] == 25.0
    ids = {}
    for k in (0, 4, 8):
        d = tmp_path / f"unseen/parity/k{k}"
        ids[k] = [json.loads(x)["id"] for x in (d / "cot_tuning/predictions.jsonl").read_text().splitlines()]
        train = [json.loads(x)["id"] for x in (d / "data/train.jsonl").read_text().splitlines()]
        assert not set(train) & set(ids[k])
        if k:
            assert len(train) == k
    assert ids[0] == ids[4] == ids[8] and len(ids[0]) == 20
    k4 = [json.loads(x)["id"] for x in (tmp_path / "unseen/parity/k4/data/train.jsonl").read_text().splitlines()]
    k8 = [json.loads(x)["id"] for x in (tmp_path / "unseen/parity/k8/data/train.jsonl").read_text().splitlines()]
    assert set(k4) <= set(k8)  # the 4 examples are among the 8
    report = (tmp_path / "unseen/unseen_report.md").read_text()
    assert "| **average** |" in report and "| parity | 20 | 50.0 |" in report
    assert json.loads((tmp_path / "unseen/unseen_summary.json").read_text())["k8"] == s["k8"]
    # a rerun reuses the finished adaptations and evaluations: the same predictions, byte for byte
    # (each row carries its generation seconds)
    preds = (tmp_path / "unseen/parity/k0/cot_tuning/predictions.jsonl").read_text()
    again = evaluate_unseen(str(student), tasks, tmp_path / "unseen", shots=[0, 4, 8], n_eval=20, reserve=8,
                            overrides=["train.max_steps=2", "train.batch_size=4", "eval.max_new_tokens=8"])
    assert (tmp_path / "unseen/parity/k0/cot_tuning/predictions.jsonl").read_text() == preds
    assert {k: v for k, v in again.items() if k != "setup"} == {k: v for k, v in s.items() if k != "setup"}
    assert "| 95% CI of the average (40 answers) |" in report
    lo, hi = s["ci95"]["k8"]
    assert lo <= s["k8"] <= hi and s["pooled"]["k8"] == round(100 * sum(
        r["k8_correct"] for r in s["per_task"].values()) / 40, 2)
    # the CLI on the same folder reuses every run and prints the table with its interval
    r = subprocess.run([sys.executable, "-m", "cotdistill.cli", "unseen", "--student", str(student),
                        *(a for t in tasks for a in ("--task", str(t))), "--out", str(tmp_path / "unseen"),
                        "--shots", "0", "--shots", "4", "--shots", "8", "--n-eval", "20", "--reserve", "8", "--set", "train.max_steps=2",
                        "--set", "train.batch_size=4", "--set", "eval.max_new_tokens=8"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "95% CI of the average" in r.stdout and f"{lo:.1f}-{hi:.1f}" in r.stdout


def test_a_small_tasks_questions_do_not_depend_on_shots(tmp_path, student):
    # 40 examples: 40 - 1 - 8 held back = 31 questions whether the run asks for k = 8 or only zero-shot,
    # so the later k-shot run can reuse the zero-shot one (before `reserve`, --shots 0 asked 39)
    task = [_bigbench_task(tmp_path / "bb/parity", n=40)]
    ids = {}
    for shots in ([0], [0, 8]):
        s = evaluate_unseen(str(student), task, tmp_path / "unseen", shots=shots, n_eval=40, reserve=8,
                            overrides=["train.max_steps=2", "train.batch_size=4", "eval.max_new_tokens=8"])
        assert s["per_task"]["parity"]["n"] == 31 and s["per_task"]["parity"]["reserve"] == 8
        ids[len(shots)] = [json.loads(x)["id"] for x in
                           (tmp_path / "unseen/parity/k0/cot_tuning/predictions.jsonl").read_text().splitlines()]
    assert ids[1] == ids[2] and len(ids[1]) == 31
    # a k beyond the reserve holds back k
    s = evaluate_unseen(str(student), task, tmp_path / "unseen12", shots=[0, 12], n_eval=40, reserve=8,
                        overrides=["train.max_steps=2", "train.batch_size=4", "eval.max_new_tokens=8"])
    assert s["per_task"]["parity"]["n"] == 27


def test_unseen_bad_input(tmp_path, student):
    small = _bigbench_task(tmp_path / "bb/small", n=20)
    with pytest.raises(DataError, match="small.*too few"):
        evaluate_unseen(str(student), [small], tmp_path / "u", shots=[0, 16], n_eval=10)
    with pytest.raises(DataError, match="small.*too few for 64 adaptation examples"):  # the default reserve
        evaluate_unseen(str(student), [small], tmp_path / "u", shots=[0], n_eval=10)
    with pytest.raises(ConfigError, match="never negative"):
        evaluate_unseen(str(student), [small], tmp_path / "u", shots=[0], reserve=-1)
    with pytest.raises(ConfigError, match="not a folder"):
        evaluate_unseen(str(tmp_path / "nope"), [small], tmp_path / "u")
    with pytest.raises(ConfigError, match="named twice"):
        evaluate_unseen(str(student), [small, small], tmp_path / "u")
    (tmp_path / "bb/bad").mkdir()
    (tmp_path / "bb/bad/task.json").write_text(json.dumps({"examples": [{"input": "x"}]}))
    with pytest.raises(DataError, match="neither `target_scores`"):
        evaluate_unseen(str(student), [tmp_path / "bb/bad"], tmp_path / "u", shots=[0])


def test_chance_level():
    class E:
        def __init__(self, c):
            self.choices = c
    assert chance([E(["a", "b"]), E(["a", "b", "c", "d"]), E(None)]) == round(100 * (0.5 + 0.25) / 3, 2)
