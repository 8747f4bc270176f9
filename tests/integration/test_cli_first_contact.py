"""First contact through the real `cotdistill` entry point: usage errors, bad input and interrupts
each end in one clear message (no traceback) and the right exit code; `validate` catches what `run`
would reject, before any teacher request; results get ordinary file permissions."""
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cotdistill.teachers.fake_server import FakeOpenAIServer

ENTRY = Path(sys.executable).parent / "cotdistill"  # the console script pip installed
SMALL = ["--set", "task.n_train=40", "--set", "task.n_test=10"]


def cotdistill(*args, env=None, cwd=None, timeout=300):
    assert ENTRY.exists(), f"no console script at {ENTRY}: is the package installed (pip install -e .)?"
    return subprocess.run([str(ENTRY), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, **(env or {})})


def fails_cleanly(r, code: int, *needles: str):
    assert r.returncode == code, (r.returncode, r.stdout[-1500:], r.stderr[-1500:])
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]
    text = " ".join((r.stderr + r.stdout).split())  # rich wraps long lines
    for n in needles:
        assert " ".join(n.split()) in text, (n, r.stderr[-1500:])


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def cfg(tmp_path):
    return write(tmp_path / "c.yaml", f"task: {{name: last_letters}}\nmethods: [direct]\nout: {tmp_path / 'out'}\n")


# -- 2. usage errors: one line and the usage, exit 2 ---------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["run", "c.yaml", "--no-such-option"], "No such option: --no-such-option"),
    (["run"], "Missing argument 'CONFIG'"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line_and_the_usage(args, needle):
    r = cotdistill(*args)
    fails_cleanly(r, 2, needle, "Usage: cotdistill")
    assert len(r.stderr.strip().splitlines()) <= 5


def test_option_without_its_value():
    fails_cleanly(cotdistill("train", "c.yaml", "--set"), 2, "Option '--set' requires an argument")


def test_version():
    from cotdistill import __version__

    r = cotdistill("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"cotdistill {__version__}"


# -- 3. bad input that used to end in a traceback ------------------------------------------------
def test_config_path_is_a_directory(tmp_path):
    fails_cleanly(cotdistill("run", tmp_path), 2, f"{tmp_path}: is a directory, not a config file")


def test_data_file_that_is_not_utf8_names_file_and_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"question": "1+1", "answer": "2"}\n{"question": "caf\xe9 2+2", "answer": "4"}\n')
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: number, n_test: 1}}\n"
                                   f"methods: [direct]\nout: {tmp_path / 'out'}\n")
    fails_cleanly(cotdistill("train", c), 2, f"{data}:2: not UTF-8 text (byte 0xe9 at column 18)")


def test_set_value_that_is_not_yaml(cfg):
    fails_cleanly(cotdistill("validate", cfg, "--set", "task.params={n_ops: [4"), 2,
                  "--set task.params={n_ops: [4: the value is not valid YAML")


def test_out_naming_an_existing_file(cfg, tmp_path):
    f = write(tmp_path / "taken.txt", "keep me")
    fails_cleanly(cotdistill("run", cfg, "--set", f"out={f}"), 2, f"`out`: {f} is an existing file")
    fails_cleanly(cotdistill("demo", "--out", f), 2, f"`out`: {f} is an existing file")
    assert f.read_text() == "keep me"


def test_out_folder_that_cannot_be_written(cfg):
    fails_cleanly(cotdistill("run", cfg, "--set", "out=/proc/cotdistill-test/run"), 2,
                  "`out`: cannot write /proc/cotdistill-test/run")


# -- 4. bad input that used to run as if fine ----------------------------------------------------
def test_gold_that_does_not_parse_under_its_kind_names_file_and_line(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"question": "1+1", "answer": "2"}\n{"question": "2+2", "answer": "banana"}\n')
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: number, n_test: 1}}\n"
                                   f"methods: [direct]\nout: {tmp_path / 'out'}\n")
    fails_cleanly(cotdistill("train", c), 2, f"{data}:2: field 'answer': 'banana' is not a number")


def test_choice_task_without_choices(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"question": "Pick one", "answer": "B"}\n{"question": "Again", "answer": "A"}\n')
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: choice, n_test: 1}}\n"
                                   f"methods: [direct]\nout: {tmp_path / 'out'}\n")
    fails_cleanly(cotdistill("train", c), 2, f"{data}:1: field 'answer': a choice question needs its options")


def test_choices_written_in_the_question_are_found(tmp_path):
    from cotdistill.tasks.files import load_file

    data = write(tmp_path / "d.jsonl", '{"question": "Which? Answer Choices: (A) red (B) blue", "answer": "B"}\n')
    assert load_file(data, "choice")[0].choices == ["red", "blue"]


def test_curation_that_keeps_nothing_is_an_error(tmp_path):
    data = write(tmp_path / "d.jsonl", "".join(json.dumps({"question": f"{i}+1?", "answer": str(i + 1)}) + "\n"
                                               for i in range(6)))
    teacher_file = write(tmp_path / "D.json", json.dumps({"data": {}}))
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: number, n_test: 2}}\n"
                                   f"teacher: {{backend: replay, path: {teacher_file}}}\nout: {tmp_path / 'out'}\n")
    # a replay file without these questions gives no rationales; a wrong teacher gives only wrong answers
    records = [{"id": f"d-{i}", "sample": 0, "question": "q", "answer": str(i + 1), "kind": "number", "choices": None,
                "rationale": "I think it is 99.", "answer_text": " 99", "finish_reason": "stop"} for i in range(4)]
    (tmp_path / "out").mkdir()
    write(tmp_path / "out" / "rationales.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    fails_cleanly(cotdistill("curate", c), 2, "curation kept 0 of 4 teacher rationales (4 wrong_answer",
                  "curation_stats.json")


def _train_config(tmp_path, name, steps=400):
    return write(tmp_path / f"{name}.yaml", f"""
task: {{name: last_letters, n_train: 200, n_test: 20}}
methods: [ft_cot]
student: {{model: "preset:tiny"}}
train: {{max_steps: {steps}, eval_every: 10, batch_size: 8, warmup_steps: 5, threads: 1}}
eval: {{max_new_tokens: 40}}
out: {tmp_path / name}
""")


@pytest.mark.slow
def test_ctrl_c_during_run_says_so_exits_130_and_a_rerun_resumes(tmp_path):
    c = _train_config(tmp_path, "sigint", steps=100)  # long enough that the signal lands mid-training
    # A shell without job control starts background commands with SIGINT ignored, and Python keeps
    # an ignored SIGINT: a suite run as `pytest &` would hand that on and the run would never see
    # the signal. The child gets the default disposition, as an interactive shell gives it.
    p = subprocess.Popen([str(ENTRY), "run", str(c), "-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ck = tmp_path / "sigint" / "ft_cot" / "checkpoints"
    deadline = time.time() + 300
    while not any((d / "trainer_state.json").exists() for d in ck.glob("checkpoint-*")) and time.time() < deadline:
        assert p.poll() is None, p.stderr.read()[-2000:]
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted" in err and "rerun the same command to resume" in " ".join(err.split())
    assert "Traceback" not in err
    r = cotdistill("run", c, "-v")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming from" in r.stderr and (tmp_path / "sigint" / "summary.json").exists()
    # stderr is a pipe here, as in a background job's log: progress comes as plain lines, not bars
    assert "train ft_cot: started, 100 to do" in r.stderr and "evaluate ft_cot: 20/20 (100%)" in r.stderr


# -- 5. validate says what run would reject, before any teacher request --------------------------
@pytest.mark.parametrize("sets,needle", [
    (["student.model=preset:huge"], "unknown student preset 'huge'"),
    (["student.model=./no/such/model"], "`student.model`: ./no/such/model does not exist"),
    (["task.name=last_leters"], "unknown synthetic task 'last_leters'. Did you mean 'last_letters'?"),
    (["task.source=benchmark", "task.name=gsm9k", "task.data_dir=."], "unknown benchmark 'gsm9k'"),
    (["task.source=file", "task.path=c.yaml", "task.kind=number", "methods=[ft_cot]"],
     "`teacher.backend`: 'exact' solves only the built-in synthetic tasks"),
    (["task.params={n_words: -1}"], "`task.params`"),
    (["train.report_to=[tensorbord]"], "`train.report_to`: unknown tracker 'tensorbord'"),
])
def test_validate_rejects_what_run_would(cfg, sets, needle):
    args = sum((["--set", s] for s in sets), [])
    fails_cleanly(cotdistill("validate", cfg, *args, cwd=cfg.parent), 2, needle)


def test_a_typo_in_the_student_costs_no_teacher_request(tmp_path):
    with FakeOpenAIServer() as srv:
        c = write(tmp_path / "c.yaml", f"""
task: {{name: arithmetic, n_train: 40, n_test: 5}}
teacher: {{backend: openai, model: t, base_url: "{srv.url}", api_key_env: COTD_TEST_KEY}}
student: {{model: "preset:huge"}}
out: {tmp_path / 'out'}
""")
        r = cotdistill("run", c, env={"COTD_TEST_KEY": "sk-test"})
        fails_cleanly(r, 2, "unknown student preset 'huge'")
        assert srv.total == 0


# -- 6. messages that used to mislead ------------------------------------------------------------
def test_evaluate_before_train_says_which_command_trains(cfg):
    fails_cleanly(cotdistill("evaluate", cfg, *SMALL), 2, "'direct' is not trained yet",
                  "cotdistill train CONFIG --method direct")


def test_unknown_hub_id_fails_at_once_offline(cfg):
    t0 = time.time()
    r = cotdistill("validate", cfg, "--set", "student.model=someone/no-such-model",
                   env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"})
    fails_cleanly(r, 2, "'someone/no-such-model' is not a local folder and no model hub is reachable (http://127.0.0.1:9)")
    assert time.time() - t0 < 20
    fails_cleanly(cotdistill("validate", cfg, "--set", "student.model=someone/no-such-model",
                             env={"HF_HUB_OFFLINE": "1"}), 2, "HF_HUB_OFFLINE is set")


def test_duplicate_ids_name_file_line_and_id(tmp_path):
    data = write(tmp_path / "d.jsonl", '{"id": "a", "question": "1+1", "answer": "2"}\n'
                                       '{"id": "b", "question": "2+2", "answer": "4"}\n'
                                       '{"id": "a", "question": "3+3", "answer": "6"}\n')
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: number, n_test: 1}}\n"
                                   f"methods: [direct]\nout: {tmp_path / 'out'}\n")
    fails_cleanly(cotdistill("train", c), 2, f"{data}:3: duplicate id 'a' (first at {data}:1)")


def test_errors_from_set_are_reported_against_the_set_and_suggest_keys(cfg):
    r = cotdistill("validate", cfg, "--set", "train.lr=0.1", "--set", "train.batch_size=-1")
    fails_cleanly(r, 2, "--set train.lr=0.1: `train.lr`: unknown key (not a config field); did you mean "
                        "`train.learning_rate`?", "--set train.batch_size=-1: `train.batch_size`")
    assert f"{cfg}:" not in r.stderr


@pytest.mark.slow
def test_file_data_is_named_after_the_file_not_the_default_task(tmp_path):
    data = write(tmp_path / "sums.jsonl", "".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n"
                                                  for i in range(30)))
    c = write(tmp_path / "c.yaml", f"task: {{source: file, path: {data}, kind: number, n_test: 5}}\n"
                                   f"methods: [direct]\ntrain: {{max_steps: 2, eval_every: 1}}\n"
                                   f"out: {tmp_path / 'out'}\n")
    r = cotdistill("run", c)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    report = (tmp_path / "out" / "report.md").read_text()
    assert summary["task"] == "sums" and "sums" in r.stdout and "arithmetic" not in report + r.stdout


# -- 7. output files -----------------------------------------------------------------------------
@pytest.mark.slow
def test_results_get_umask_permissions_and_the_bar_ends_full_after_a_resume(tmp_path):
    c = _train_config(tmp_path, "modes", steps=10)
    env = {"COLUMNS": ""}
    r = subprocess.run(["sh", "-c", f"umask 022 && exec {ENTRY} run {c} --set methods=[direct,ft_cot]"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "modes"
    for rel in ["summary.json", "report.md", "data/train.jsonl", "data/test.jsonl", "rationales.jsonl",
                "curated.jsonl", "ft_cot/metrics.json", "ft_cot/predictions.jsonl", "ft_cot/model/model.safetensors",
                "direct/model/model.safetensors", "ft_cot/train_info.json"]:
        assert stat.S_IMODE((out / rel).stat().st_mode) == 0o644, rel
    # piped stdout: the table is not cut at 80 columns
    assert any(len(line) > 80 and "train pairs" in line for line in r.stdout.splitlines()), r.stdout
    # a larger budget resumes at step 10; the bar still ends at its total
    r = cotdistill("run", c, "--set", "methods=[direct,ft_cot]", "--set", "train.max_steps=14")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "14/14" in r.stderr and "10/14" not in r.stderr.split("train ft_cot")[-1].split("\n")[0]
