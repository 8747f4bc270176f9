"""post / adaptive / step_by_step through the same config, pipeline and CLI as direct and ft_cot."""
import json

import pytest

from cotdistill.config import load_config
from cotdistill.pipeline import Run

from .test_pipeline import TINY, cli

pytestmark = pytest.mark.slow

MIXED = ["task.name=mixed", "task.params={parts: [{name: last_letters, params: {n_words: 2}}, "
         "{name: multiplication, params: {digits_a: 2, digits_b: 1}}]}", "task.n_train=240"]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_answer_first_methods_end_to_end_with_routing_saved_and_reloaded(tmp_path):
    over = [f"out={tmp_path}", *TINY, *MIXED, "methods=[post, adaptive, step_by_step]",
            "method_options.adaptive.perception_steps=20"]
    s = Run(load_config(None, over)).run_all()
    assert set(s["methods"]) == {"post", "adaptive", "step_by_step"}
    mdir = tmp_path / "adaptive" / "model"
    assert {"perception.safetensors", "config.json", "route_labels.jsonl"} <= {p.name for p in (mdir / "perception").iterdir()}
    info = json.loads((tmp_path / "adaptive" / "train_info.json").read_text())
    assert info["held_out_questions"] == 48 and info["routing"]["held_out_questions"] == 48 + 24  # + validation
    assert len(_jsonl(mdir / "perception" / "route_labels.jsonl")) == 72
    check = info["routing"]["check"]  # the routes against each single mode on the held-out questions
    assert check["pre_accuracy"] == info["routing"]["pre_accuracy"] and 0 <= check["routed_accuracy"] <= 100
    best = max(check["pre_accuracy"], check["post_accuracy"])
    assert (check["fixed_mode"] is None) == (check["routed_accuracy"] >= best)
    preds = _jsonl(tmp_path / "adaptive" / "predictions.jsonl")
    assert all(p["mode"] in ("pre", "post") and 0 <= p["p_post"] <= 1 for p in preds)
    m = s["methods"]["adaptive"]
    assert m["post_fraction"] == pytest.approx(sum(p["mode"] == "post" for p in preds) / len(preds), abs=1e-4)
    assert sum(v["n"] for v in m["by_mode"].values()) == 40
    sbs = json.loads((tmp_path / "step_by_step" / "train_info.json").read_text())
    assert sbs["train_pairs"] == 2 * json.loads((tmp_path / "post" / "train_info.json").read_text())["train_pairs"]
    report = (tmp_path / "report.md").read_text()
    assert "routed to post" in report and "| adaptive |" in report and "s / 100 questions" in report

    # The CLI reloads the student and its perception module from the run folder: same routes.
    r = cli("evaluate", str(_cfg(tmp_path)), "--method", "adaptive", *sum((["--set", o] for o in over[1:]), []))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "routed to post" in r.stdout
    again = _jsonl(tmp_path / "adaptive" / "predictions.jsonl")
    assert [p["mode"] for p in again] == [p["mode"] for p in preds]
    assert [p["generation"] for p in again] == [p["generation"] for p in preds]


def test_post_stops_after_the_answer_and_explains_on_request(tmp_path):
    over = [f"out={tmp_path}", *TINY, "task.params={n_words: 2}", "methods=[post]", "train.max_steps=250",
            "train.eval_every=250", "eval.max_new_tokens=80"]
    run = Run(load_config(None, over))
    s = run.run_all()
    short = _jsonl(tmp_path / "post" / "predictions.jsonl")
    assert sum(p["finish_reason"] == "stop" for p in short) >= 36  # it learned to write the separator
    assert s["methods"]["post"]["mean_generated_tokens"] < 10  # answer + " -->", not the rationale
    assert all(p["rationale"] is None for p in short)
    log = [r for r in _jsonl(next((tmp_path / "post").rglob("train_log.jsonl"))) if "eval_loss" in r]
    assert log and all(r["eval_loss_answer"] > 0 for r in log)  # the answer's own validation curve
    r = cli("evaluate", str(_cfg(tmp_path)), "--method", "post", "--explain", *sum((["--set", o] for o in over), []))
    assert r.returncode == 0, r.stderr[-2000:]
    long = _jsonl(tmp_path / "post" / "predictions.jsonl")
    assert sum(p["generated_tokens"] for p in long) > 3 * sum(p["generated_tokens"] for p in short)
    assert sum(bool(p["rationale"]) for p in long) >= 36
    assert [p["prediction"] for p in long] == [p["prediction"] for p in short]  # greedy: same answer first


def test_post_answer_weight_trains_the_answer_alone_beside_each_row(tmp_path):
    over = [f"out={tmp_path}", *TINY, "task.params={n_words: 2}", "methods=[post]", "train.max_steps=4",
            "train.eval_every=4", "method_options.post.answer_weight=2.0"]
    s = Run(load_config(None, over)).run_all()
    info = json.loads((tmp_path / "post" / "train_info.json").read_text())
    kept = len(_jsonl(tmp_path / "curated.jsonl"))  # one rationale per question: a row and its answer pair
    assert info["train_pairs"] + info["val_pairs"] == 2 * kept
    assert s["methods"]["post"]["steps"] == 4


def _cfg(tmp_path):
    c = tmp_path / "c.yaml"
    c.write_text(f"out: {tmp_path}\n")
    return c


def test_answer_first_methods_on_an_encoder_decoder_student(tmp_path):
    over = [f"out={tmp_path}", *TINY, *MIXED, "task.n_train=60", "task.n_test=10", "student.model=preset:t5-tiny",
            "train.max_steps=6", "train.eval_every=3", "eval.max_new_tokens=12",
            "methods=[post, adaptive, step_by_step]", "method_options.adaptive.perception_steps=5"]
    s = Run(load_config(None, over)).run_all()
    assert all(s["methods"][m]["n"] == 10 for m in ("post", "adaptive", "step_by_step"))
    assert (tmp_path / "adaptive/model/perception/perception.safetensors").exists()
    assert all(p["generated_tokens"] <= 12 for p in _jsonl(tmp_path / "post" / "predictions.jsonl"))
