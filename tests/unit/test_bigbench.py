"""The BIG-bench JSON task loader (`task.source: bigbench`)."""
import json
from collections import Counter

import pytest

from cotdistill.config import load_config
from cotdistill.errors import DataError
from cotdistill.pipeline import Run
from cotdistill.tasks.bigbench import load_bigbench
from cotdistill.tasks.schema import format_choices


def write_task(folder, examples, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.json").write_text(json.dumps({"name": folder.name, "examples": examples, **extra}))
    return folder


def test_real_bbh_tasks_load(shared_data):
    root = shared_data / "bigbench"
    in_file = load_bigbench(root / "date_understanding", shuffle_choices=False)
    assert len(in_file) == 369 and in_file[0].kind.value == "choice" and in_file[0].answer == "A"
    assert in_file[0].question.endswith("(F) 04/29/2021") and in_file[0].choices[0] == "05/01/2021"
    # the file lists the gold option first in 364 of 369 examples: shuffled, no position is a tell
    date = load_bigbench(root / "date_understanding")
    assert Counter(e.answer for e in in_file)["A"] == 364
    assert max(Counter(e.answer for e in date).values()) < 0.25 * len(date)
    for a, b in zip(in_file, date):  # the same options and the same gold option, in another order
        assert sorted(a.choices) == sorted(b.choices) and a.choices[ord(a.answer) - 65] == b.choices[ord(b.answer) - 65]
        assert b.question.endswith(format_choices(b.choices))
    assert [e.choices for e in load_bigbench(root / "date_understanding")] == [e.choices for e in date]  # seeded
    counting = load_bigbench(root / "object_counting")
    assert counting[0].kind.value == "number" and counting[0].answer == "3"  # ["three", "3"]
    logic = load_bigbench(root / "logical_deduction")  # three subtasks under one folder
    assert len(logic) == 1500 and {e.metadata["subtask"] for e in logic} == {"three_objects", "five_objects",
                                                                             "seven_objects"}
    assert len({e.id for e in logic}) == 1500


def test_a_task_written_here(tmp_path):
    mc = write_task(tmp_path / "mc", [{"input": "2 + 2?", "target_scores": {"3": 0, "4": 1}}],
                    task_prefix="Answer the sum.", example_input_prefix="\nQ: ")
    (e,) = load_bigbench(mc, shuffle_choices=False)
    assert e.question == "Answer the sum. Q: 2 + 2? Answer Choices: (A) 3 (B) 4" and e.answer == "B"
    (e,) = load_bigbench(mc)
    assert e.choices[ord(e.answer) - 65] == "4" and e.question.endswith(format_choices(e.choices))
    free = write_task(tmp_path / "free", [{"input": "Sort: b a", "target": "a b"}, {"input": "x", "target": ["y", "z"]}])
    a, b = load_bigbench(free / "task.json")  # a task.json path works too
    assert (a.kind.value, a.answer, b.answer, b.metadata["targets"]) == ("text", "a b", "y", ["y", "z"])
    mixed = write_task(tmp_path / "nums", [{"input": "one plus one", "target": ["two", "2"]}])
    assert load_bigbench(mixed)[0].answer == "2"


def test_bad_tasks_name_the_file_and_example(tmp_path):
    bad = write_task(tmp_path / "bad", [{"input": "ok", "target": "x"}, {"input": "no target"}])
    with pytest.raises(DataError, match=r"bad/task.json examples\[1\]: has neither `target_scores`"):
        load_bigbench(bad)
    with pytest.raises(DataError, match=r"bad/task.json examples\[1\]"):
        load_bigbench(tmp_path)  # a folder of tasks loads (and checks) its subfolders
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no BIG-bench task.json here"):
        load_bigbench(tmp_path / "empty")


def test_bigbench_source_holds_out_test_questions(tmp_path):
    task = write_task(tmp_path / "t", [{"input": f"{i} + 1?", "target": str(i + 1)} for i in range(20)])
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.source=bigbench", f"task.path={task}", "task.n_test=5"])
    assert cfg.task.display_name == "bigbench:t"
    train, test = Run(cfg).data()
    assert (len(train), len(test)) == (15, 5) and not {e.id for e in train} & {e.id for e in test}


def test_the_bigbench_source_shuffles_options_unless_told_not_to(tmp_path):
    task = write_task(tmp_path / "t", [{"input": f"{i}?", "target_scores": {"right": 1, "w1": 0, "w2": 0, "w3": 0}}
                                       for i in range(40)])
    golds = {}
    for flag in (True, False):
        cfg = load_config(None, [f"out={tmp_path / str(flag)}", "task.source=bigbench", f"task.path={task}",
                                 "task.n_test=10", f"task.shuffle_choices={str(flag).lower()}"])
        train, test = Run(cfg).data()
        golds[flag] = Counter(e.answer for e in train + test)
        assert all(e.choices[ord(e.answer) - 65] == "right" for e in train + test)
    assert golds[False] == {"A": 40} and len(golds[True]) == 4


def test_a_folder_made_before_options_were_shuffled_is_refused_not_reused(tmp_path):
    from cotdistill.errors import ConfigError
    from cotdistill.runs import RunFolder

    task = write_task(tmp_path / "t", [{"input": f"{i}?", "target_scores": {"right": 1, "wrong": 0}} for i in range(20)])
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.source=bigbench", f"task.path={task}", "task.n_test=5"])
    Run(cfg).data()
    Run(cfg).data()  # a folder of this version is reused
    stamp = RunFolder(tmp_path / "run").task_stamp
    old = json.loads(stamp.read_text())
    del old["shuffle_choices"]  # as written before the setting existed: file order
    stamp.write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="differs in: shuffle_choices"):
        Run(cfg).data()
    off = load_config(None, [f"out={tmp_path / 'run'}", "task.source=bigbench", f"task.path={task}", "task.n_test=5",
                             "task.shuffle_choices=false"])
    Run(off).data()  # asking for the file order matches it
