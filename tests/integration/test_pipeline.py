"""End to end on tiny assets: the CLI, the pipeline, and real architectures (GPT-2, T5) built
with random weights, saved to a temp dir and loaded by path through the same code users use."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cotdistill.config import load_config
from cotdistill.errors import ConfigError
from cotdistill.pipeline import Run

pytestmark = pytest.mark.slow

TINY = ["task.name=last_letters", "task.n_train=200", "task.n_test=40", "student.model=preset:tiny",
        "train.max_steps=30", "train.eval_every=15", "train.warmup_steps=5", "eval.max_new_tokens=100"]


def cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "cotdistill.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


def test_tiny_pipeline_end_to_end(tmp_path):
    cfg = load_config(None, [f"out={tmp_path}", *TINY])
    s = Run(cfg).run_all()
    assert set(s["methods"]) == {"direct", "ft_cot"} and s["curation"]["kept"] == 200
    for m in ("direct", "ft_cot"):
        preds = [json.loads(l) for l in (tmp_path / m / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == 40 and {"question", "rationale", "prediction", "gold", "correct"} <= preds[0].keys()
        info = json.loads((tmp_path / m / "train_info.json").read_text())
        assert info["steps"] == 30 and info["best_step"] in (15, 30)
        log = [json.loads(l) for l in (tmp_path / m / "train_log.jsonl").read_text().splitlines()]
        losses = [h["loss"] for h in log if "loss" in h]
        assert all(map(lambda x: x == x and x < 100, losses)) and losses[-1] < losses[0]  # finite and learning
        assert (tmp_path / m / "model" / "model.safetensors").exists()
        assert (tmp_path / m / "model" / "cotdistill.yaml").exists()
    assert (tmp_path / "report.md").read_text().count("| ft_cot |") == 1 and (tmp_path / "accuracy.png").exists()


def test_rerun_reuses_cache_and_resumes_training(tmp_path):
    over = [f"out={tmp_path}", *TINY, "methods=[ft_cot]"]
    Run(load_config(None, over)).run_all()
    first = (tmp_path / "ft_cot" / "metrics.json").read_text()
    weights = (tmp_path / "ft_cot" / "model" / "model.safetensors").read_bytes()
    log = (tmp_path / "ft_cot" / "train_log.jsonl").read_text()
    # the same budget again: the finished checkpoint is reused, not trained one step further
    Run(load_config(None, over)).run_all()
    info = json.loads((tmp_path / "ft_cot" / "train_info.json").read_text())
    assert info["steps"] == 30 and info["best_step"] in (15, 30)
    assert (tmp_path / "ft_cot" / "model" / "model.safetensors").read_bytes() == weights
    untimed = lambda text: {k: v for k, v in json.loads(text).items() if k != "seconds_per_100"}  # noqa: E731
    assert untimed((tmp_path / "ft_cot" / "metrics.json").read_text()) == untimed(first)
    logged = (tmp_path / "ft_cot" / "train_log.jsonl").read_text()
    assert [json.loads(l) for l in logged.splitlines()] == [json.loads(l) for l in log.splitlines()]
    # a second run with a larger budget resumes from the checkpoint and asks the teacher nothing new
    run = Run(load_config(None, [*over, "train.max_steps=45"]))
    train, _ = run.data()
    from cotdistill.teachers import build_teacher
    t = build_teacher(run.cfg.teacher, run.cfg.task, run.folder.teacher_cache)
    from cotdistill.teachers.generate import generate_rationales
    from cotdistill.teachers import build_prompting
    generate_rationales(train, t, build_prompting(run.cfg.teacher, "last_letters"))
    assert t.misses == 0 and t.hits == 400
    run.run_all()
    info = json.loads((tmp_path / "ft_cot" / "train_info.json").read_text())
    assert info["steps"] == 45 and first
    steps = [json.loads(l)["step"] for l in (tmp_path / "ft_cot" / "train_log.jsonl").read_text().splitlines()]
    assert min(steps) <= 15 and max(steps) == 45  # the log keeps the steps before the resume


def test_a_rerun_reuses_a_finished_evaluation_until_its_model_questions_or_settings_change(tmp_path, caplog):
    over = [f"out={tmp_path}", *TINY, "methods=[ft_cot]", "train.keep_checkpoints=false", "train.max_steps=10",
            "train.eval_every=5", "eval.max_new_tokens=40"]
    mdir = tmp_path / "ft_cot"

    def rerun(*extra) -> bool:
        """Reruns; True when the evaluation was read back rather than generated."""
        caplog.clear()
        with caplog.at_level("INFO", logger="cotdistill"):
            Run(load_config(None, [*over, *extra])).run_all()
        return "evaluation of ft_cot already finished" in caplog.text

    Run(load_config(None, over)).run_all()
    preds = (mdir / "predictions.jsonl").read_text()  # each row carries its generation seconds
    assert rerun() and (mdir / "predictions.jsonl").read_text() == preds
    assert json.loads((tmp_path / "summary.json").read_text())["methods"]["ft_cot"]["n"] == 40
    assert not rerun("eval.max_new_tokens=20")  # another setting: generated again, and shorter
    assert all(p["generated_tokens"] <= 20 for p in map(json.loads, (mdir / "predictions.jsonl").read_text().splitlines()))
    assert rerun("eval.max_new_tokens=20")
    cfg = mdir / "model" / "config.json"
    cfg.write_text(cfg.read_text() + "\n")  # the model's files changed (same size would do too: content is hashed)
    assert not rerun("eval.max_new_tokens=20")
    (mdir / "evaluation.json").write_text("{")  # a damaged stamp: evaluate again, do not fail
    assert not rerun("eval.max_new_tokens=20")
    assert rerun("eval.max_new_tokens=20")
    run = Run(load_config(None, [*over, "eval.max_new_tokens=20"]))
    test = run.data()[1]
    assert len(run.evaluate("ft_cot", test[:30], reuse=True)[0]) == 30  # other questions: generated
    assert len(run.evaluate("ft_cot", test, reuse=True)[0]) == 40
    before = (mdir / "predictions.jsonl").read_text()
    assert run.evaluate("ft_cot", test, reuse=True)[0] == [json.loads(l) for l in before.splitlines()]
    # `cotdistill evaluate` (Run.evaluate without reuse) always generates
    run.evaluate("ft_cot", test)
    assert (mdir / "predictions.jsonl").read_text() != before


def test_an_interrupted_evaluation_resumes_from_its_saved_parts(tmp_path, monkeypatch, caplog):
    import cotdistill.evaluate as ev
    import cotdistill.pipeline as pipeline

    monkeypatch.setattr(pipeline, "EVAL_CHUNK", 16)  # 40 questions: parts of 16, 16 and 8
    over = [f"out={tmp_path}", *TINY, "methods=[ft_cot]", "train.keep_checkpoints=false", "train.max_steps=10",
            "train.eval_every=5", "eval.max_new_tokens=30"]
    run = Run(load_config(None, over))
    train, test, curated = run.prepare()
    run.train("ft_cot", train, curated)
    answers = lambda preds: [{k: v for k, v in p.items() if k != "seconds"} for p in preds]  # noqa: E731 (timing differs)
    whole = answers(run.evaluate("ft_cot", test)[0])
    mdir, real, asked = tmp_path / "ft_cot", ev.predict, []

    def predict(*a, **kw):
        asked.append([e.id for e in a[4]])
        if len(asked) == 2 and kill:
            raise KeyboardInterrupt  # killed during the second part
        return real(*a, **kw)

    def interrupted(r: Run) -> None:
        asked.clear()
        with pytest.raises(KeyboardInterrupt):
            r.evaluate("ft_cot", test)
        asked.clear()

    monkeypatch.setattr(ev, "predict", predict)
    kill = True
    interrupted(run)
    assert not (mdir / "evaluation.json").exists() and (mdir / "evaluation.parts" / "00000.jsonl").exists()
    kill = False
    with caplog.at_level("INFO", logger="cotdistill"):
        again = run.evaluate("ft_cot", test, reuse=True)[0]
    assert "resuming the evaluation of ft_cot: 16 of 40 questions already answered" in caplog.text
    assert asked == [[e.id for e in test[16:32]], [e.id for e in test[32:]]]  # the first part was not redone
    assert answers(again) == whole and not (mdir / "evaluation.parts").exists()
    # parts of another evaluation (other settings), or a damaged part, are answered again
    kill = True
    interrupted(run)
    kill = False
    assert len(Run(load_config(None, [*over, "eval.max_new_tokens=10"])).evaluate("ft_cot", test)[0]) == 40
    assert len(asked) == 3
    kill = True
    interrupted(run)
    kill = False
    (mdir / "evaluation.parts" / "00000.jsonl").write_text('{"id": ')
    assert answers(run.evaluate("ft_cot", test)[0]) == whole and len(asked) == 3


def test_report_to_tensorboard_logs_under_the_method_and_does_not_change_the_training_setup(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    over = [f"out={tmp_path}", *TINY, "methods=[direct]", "train.max_steps=10", "train.eval_every=5",
            "train.keep_checkpoints=false", "eval.max_new_tokens=10"]
    Run(load_config(None, [*over, "train.report_to=[tensorboard]"])).run_all()
    logs = tmp_path / "direct" / "logs"
    assert not (tmp_path / "direct" / "checkpoints").exists()  # the logs outlive the deleted checkpoints
    events = EventAccumulator(str(logs))
    events.Reload()
    assert {"train/loss", "eval/loss"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("eval/loss")] == [5, 10]
    logged = [json.loads(l) for l in (tmp_path / "direct" / "train_log.jsonl").read_text().splitlines()]
    assert [e.value for e in events.Scalars("eval/loss")] == pytest.approx([h["eval_loss"] for h in logged
                                                                            if "eval_loss" in h])
    # logging is not part of the training setup: the same folder without it reuses the model
    weights = (tmp_path / "direct" / "model" / "model.safetensors").read_bytes()
    Run(load_config(None, over)).run_all()
    assert (tmp_path / "direct" / "model" / "model.safetensors").read_bytes() == weights


def test_dropped_checkpoints_a_rerun_reuses_the_model_and_a_larger_budget_retrains(tmp_path, caplog):
    over = [f"out={tmp_path}", *TINY, "methods=[ft_cot]", "train.keep_checkpoints=false"]
    Run(load_config(None, over)).run_all()
    mdir = tmp_path / "ft_cot"
    assert not (mdir / "checkpoints").exists() and (mdir / "model" / "model.safetensors").exists()
    weights, info = (mdir / "model" / "model.safetensors").read_bytes(), (mdir / "train_info.json").read_text()
    with caplog.at_level("INFO", logger="cotdistill"):
        Run(load_config(None, over)).run_all()
    assert "training already finished at step 30: reusing its model" in caplog.text
    assert (mdir / "model" / "model.safetensors").read_bytes() == weights and (mdir / "train_info.json").read_text() == info
    assert not (mdir / "checkpoints").exists()
    caplog.clear()
    with caplog.at_level("INFO", logger="cotdistill"):
        Run(load_config(None, [*over, "train.max_steps=45"])).run_all()
    assert "no checkpoint to resume from" in caplog.text
    steps = [json.loads(l)["step"] for l in (mdir / "train_log.jsonl").read_text().splitlines()]
    assert json.loads((mdir / "train_info.json").read_text())["steps"] == 45 and min(steps) < 15  # from the start


def test_kept_checkpoints_a_rerun_reuses_the_model_without_saving_it_again(tmp_path, caplog):
    over = [f"out={tmp_path}", *TINY, "methods=[ft_cot]", "train.max_steps=10", "train.eval_every=5",
            "eval.max_new_tokens=20"]
    Run(load_config(None, over)).run_all()
    mdir = tmp_path / "ft_cot"
    assert (mdir / "checkpoints" / "checkpoint-10").is_dir()
    files = {p: p.stat().st_mtime_ns for p in (mdir / "model").iterdir()}
    # another out folder for the same run would have rewritten model/cotdistill.yaml and so evaluated again
    with caplog.at_level("INFO", logger="cotdistill"):
        Run(load_config(None, over)).run_all()
    assert "training already finished at step 10: reusing its model" in caplog.text
    assert "evaluation of ft_cot already finished" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in (mdir / "model").iterdir()} == files
    caplog.clear()
    with caplog.at_level("INFO", logger="cotdistill"):  # a larger budget resumes from checkpoint-10
        Run(load_config(None, [*over, "train.max_steps=15"])).run_all()
    assert "reusing its model" not in caplog.text
    info = json.loads((mdir / "train_info.json").read_text())
    steps = [json.loads(l)["step"] for l in (mdir / "train_log.jsonl").read_text().splitlines()]
    assert info["steps"] == 15 and min(steps) <= 5  # resumed: the log keeps the steps before


def _save_random(kind: str, path: Path):
    from cotdistill.students.presets import byte_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    tok = byte_tokenizer()
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=32, n_layer=2, n_head=2,
                                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    else:
        model = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                                    num_heads=4, pad_token_id=tok.pad_token_id,
                                                    eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_real_architectures_load_by_path_and_train(tmp_path, kind):
    _save_random(kind, tmp_path / "student")
    cfg = load_config(None, [f"out={tmp_path / 'run'}", *TINY, f"student.model={tmp_path / 'student'}",
                             "train.max_steps=10", "train.eval_every=5", "methods=[ft_cot]"])
    s = Run(cfg).run_all()
    from cotdistill.students import load_student
    orig, _, _ = load_student(str(tmp_path / "student"))
    trained, _, seq2seq = load_student(str(tmp_path / "run" / "ft_cot" / "model"))
    assert seq2seq is (kind == "t5")
    changed = [n for (n, a), (_, b) in zip(orig.named_parameters(), trained.named_parameters()) if not torch.equal(a, b)]
    assert changed, "training changed no parameter"
    assert s["methods"]["ft_cot"]["n"] == 40


def test_local_transformers_teacher_on_random_gpt2(tmp_path):
    _save_random("gpt2", tmp_path / "teacher")
    from cotdistill.teachers.base import GenParams, Request
    from cotdistill.teachers.local import LocalTeacher

    t = LocalTeacher(str(tmp_path / "teacher"), batch_size=4)
    reqs = [Request(f"Q: {i} + 1?\nA:", GenParams(max_tokens=8)) for i in range(6)]
    out = t.complete(reqs)
    assert len(out) == 6 and all(c.completion_tokens <= 8 and c.finish_reason in ("stop", "length") for c in out)
    assert t.complete(reqs)[0].text == out[0].text  # greedy is deterministic


def test_cli_run_validate_and_list(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"out: {tmp_path / 'out'}\nmethods: [direct]\n")
    r = cli("validate", str(cfg))
    assert r.returncode == 0 and "valid" in r.stdout
    r = cli("run", str(cfg), *sum((["--set", o] for o in TINY), []))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "direct" in r.stdout and (tmp_path / "out" / "summary.json").exists()
    assert "multiplication" in cli("list").stdout


@pytest.mark.parametrize("content,match", [
    ("train:\n  max_stepz: 3\n", "train.max_stepz"),
    ("methods: [ft_cott]\n", "Did you mean 'ft_cot'"),
    ("task:\n  source: file\n  path: /nope.jsonl\n  kind: number\n", "`task.path`: /nope.jsonl does not exist"),
    ("teacher:\n  backend: openai\n  model: m\n  api_key_env: COTDISTILL_NO_SUCH_KEY\n", "COTDISTILL_NO_SUCH_KEY is not set"),
    ("student:\n  model: /no/such/student\nmethods: [direct]\n", "`student.model`: /no/such/student does not exist"),
    ("student:\n  model: preset:huge\nmethods: [direct]\n", "unknown student preset 'huge'"),
    ("task:\n  name: coin_flipp\n", "Did you mean 'coin_flip'"),
])
def test_cli_bad_input_is_one_clear_message(tmp_path, content, match):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(content + f"out: {tmp_path / 'out'}\n")
    r = cli("run", str(cfg), "--set", "task.n_train=5", "--set", "task.n_test=2")
    assert r.returncode == 2, r.stderr
    assert match in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


def test_cli_bad_jsonl_line_is_named(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task:\n  source: file\n  path: {data}\n  kind: number\nmethods: [direct]\nout: {tmp_path / 'out'}\n")
    r = cli("train", str(cfg))
    assert r.returncode == 2 and f"{data}:2: missing field 'answer'" in r.stderr
    assert not (tmp_path / "out" / "data" / "train.jsonl").exists()


def test_a_source_file_edited_in_place_is_not_trained_on_from_the_stale_copy(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(12)))
    over = [f"out={tmp_path / 'out'}", "task.source=file", f"task.path={data}", "task.kind=number", "task.n_test=4"]
    Run(load_config(None, over)).data()
    Run(load_config(None, over)).data()  # unchanged: the copy is reused
    data.write_text(data.read_text().replace('"12"', '"13"'))  # a label fixed in place
    with pytest.raises(ConfigError, match=rf"{data} changed since .*out/data was made from it"):
        Run(load_config(None, over)).data()
    shutil.rmtree(tmp_path / "out" / "data")
    train, test = Run(load_config(None, over)).data()  # reloaded from the fixed file
    assert "13" in {e.answer for e in train + test} and "12" not in {e.answer for e in train + test}


def test_run_folder_refuses_a_different_config(tmp_path):
    from cotdistill.errors import ConfigError

    over = [f"out={tmp_path}", *TINY, "methods=[direct]", "train.max_steps=3"]
    Run(load_config(None, over)).run_all()
    with pytest.raises(ConfigError, match="different task"):
        Run(load_config(None, [*over, "task.name=coin_flip"])).run_all()
    with pytest.raises(ConfigError, match="different training setup"):
        Run(load_config(None, [*over, "train.learning_rate=0.01"])).run_all()
    Run(load_config(None, [*over, "train.learning_rate=0.01", "train.resume=false"])).run_all()  # retrains
    # A folder stamped before later settings existed resumes: a missing key reads as its default.
    stamp = tmp_path / "direct" / "train_fingerprint.json"
    fp = json.loads(stamp.read_text())
    for section, keys in {"train": ("lr_schedule", "group_by_length"), "student": ("tokenizer", "lora")}.items():
        for k in keys:
            del fp[section][k]
    stamp.write_text(json.dumps(fp))
    Run(load_config(None, [*over, "train.learning_rate=0.01"])).run_all()  # no "different training setup"
    for change in ("train.lr_schedule=linear", "train.group_by_length=false", "student.lora={r: 4}"):
        name = change.split("=")[0]
        with pytest.raises(ConfigError, match=rf"different training setup \(differs in: {name}\)"):
            Run(load_config(None, [*over, "train.learning_rate=0.01", change])).run_all()


def test_demo_command_smoke(tmp_path):
    r = cli("demo", "--out", str(tmp_path / "d"), "--set", "train.max_steps=4", "--set", "task.n_train=60",
            "--set", "task.n_test=20", "--set", "student.model=preset:tiny", "--set", "train.eval_every=2")
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["task"] == "arithmetic" and set(s["methods"]) == {"direct", "ft_cot"}
    assert 0 <= s["methods"]["ft_cot"]["accuracy"] <= 100 and (tmp_path / "d" / "report.md").exists()
    assert "ft_cot - direct" in r.stdout
    assert r.stdout.startswith("Demo: the exact teacher") and "About 1 minute on" in r.stdout  # says what and how long


def test_demo_says_how_long_its_default_budget_takes():
    from importlib.resources import files

    from cotdistill.cli import _demo_minutes

    cfg = load_config(Path(str(files("cotdistill") / "configs" / "demo.yaml")), [])
    assert cfg.train.max_steps == 4000 and _demo_minutes(cfg).startswith("About 7 minutes on an idle 2-core CPU")


def test_local_transformers_teacher_on_random_t5(tmp_path):
    _save_random("t5", tmp_path / "teacher")
    from cotdistill.teachers.base import GenParams, Request
    from cotdistill.teachers.local import LocalTeacher

    t = LocalTeacher(str(tmp_path / "teacher"), batch_size=3)
    out = t.complete([Request(f"Q: {i} + 1?", GenParams(max_tokens=6)) for i in range(5)])
    assert len(out) == 5 and all(c.completion_tokens <= 6 for c in out) and t.seq2seq


def test_vllm_teacher_when_installed(tmp_path):
    pytest.importorskip("vllm", reason="vLLM is an optional extra (pip install 'cotdistill[vllm]')")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    _save_random("gpt2", tmp_path / "teacher")
    from cotdistill.teachers.base import GenParams, Request
    from cotdistill.teachers.vllm_backend import VLLMTeacher

    t = VLLMTeacher(str(tmp_path / "teacher"))
    out = t.complete([Request("Q: 1?\nA:", GenParams(temperature=0.7, max_tokens=8, seed=1), s) for s in range(3)])
    assert len(out) == 3 and all(c.completion_tokens <= 8 for c in out)


def test_vllm_backend_missing_is_a_clear_error(monkeypatch):
    import builtins

    from cotdistill.errors import TeacherError

    real = builtins.__import__

    def fake(name, *a, **kw):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("no vllm")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    from cotdistill.teachers.vllm_backend import VLLMTeacher

    with pytest.raises(TeacherError, match="pip install 'cotdistill\\[vllm\\]'"):
        VLLMTeacher("x")


def test_bpe_student_tokenizer_is_trained_once_per_run_and_saved_with_the_student(tmp_path):
    over = [*TINY, "methods=[ft_cot]", "train.max_steps=10", "eval.max_new_tokens=40"]
    Run(load_config(None, [f"out={tmp_path / 'byte'}", *over])).run_all()
    Run(load_config(None, [f"out={tmp_path / 'bpe'}", *over, "student.tokenizer=bpe", "student.vocab_size=400"])).run_all()
    byte = json.loads((tmp_path / "byte/ft_cot/train_info.json").read_text())["tokens_per_example"]
    bpe = json.loads((tmp_path / "bpe/ft_cot/train_info.json").read_text())["tokens_per_example"]
    assert bpe * 2 < byte, (bpe, byte)
    from transformers import AutoTokenizer

    run_tok = AutoTokenizer.from_pretrained(str(tmp_path / "bpe/tokenizer"))
    saved = AutoTokenizer.from_pretrained(str(tmp_path / "bpe/ft_cot/model"))
    assert len(saved) == len(run_tok) <= 400 and saved.get_vocab() == run_tok.get_vocab()
    with pytest.raises(ConfigError, match="holds artifacts of a different"):  # the run tokenizer is never silently replaced
        Run(load_config(None, [f"out={tmp_path / 'bpe'}", *over, "student.tokenizer=bpe", "student.vocab_size=500"])).run_all()
