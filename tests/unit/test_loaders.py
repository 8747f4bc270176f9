import json

import pytest

from cotdistill.errors import ConfigError, DataError
from cotdistill.tasks.benchmarks import BENCHMARKS, load_benchmark
from cotdistill.tasks.files import load_file, load_gsm8k

SIZES = {"single_eq": 508, "addsub": 395, "multiarith": 600, "gsm8k": 8792, "aqua": 254, "svamp": 1000,
         "commonsense_qa": 10962, "strategy_qa": 2290, "date_understanding": 369,
         "tracking_shuffled_objects": 750, "coin_flip": 500, "last_letter_concatenation": 500}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmarks_load_from_original_files(shared_data, name):
    exs = load_benchmark(name, shared_data)
    assert len(exs) == SIZES[name]
    assert all(e.question and e.answer for e in exs)
    if exs[0].kind.value == "choice":
        assert all(e.choices and e.answer in "ABCDEFG"[: len(e.choices)] for e in exs)


@pytest.mark.parametrize("name,n_train,n_test", [
    ("coin_flip", 350, 150), ("multiarith", 420, 180), ("gsm8k", 7473, 1319), ("commonsense_qa", 9741, 1221),
    ("date_understanding", 258, 111),
])
def test_official_splits(shared_data, name, n_train, n_test):
    tr, te = load_benchmark(name, shared_data, "train"), load_benchmark(name, shared_data, "test")
    assert (len(tr), len(te)) == (n_train, n_test)
    assert not {e.id for e in tr} & {e.id for e in te}


def test_official_split_indices_match_the_teacher_release(shared_data):
    """Split index i is sample_index i of the released teacher file (same question)."""
    rel = json.loads((shared_data / "finetune-cot/teacher/text-davinci-002__zs_cot/D_coin_flip.json").read_text())
    test = load_benchmark("coin_flip", shared_data, "test")
    for e in test[:20]:
        assert rel["data"][str(e.metadata["index"])][0]["question"] == e.question


def test_aqua_train_split_missing_is_explained(shared_data):
    with pytest.raises(DataError, match="split indices .* not in the loaded files"):
        load_benchmark("aqua", shared_data, "train")
    assert len(load_benchmark("aqua", shared_data, "test")) == 254


def test_gsm8k_jsonl_keeps_human_rationale(shared_data):
    exs = load_gsm8k(shared_data / "gsm8k/test.jsonl")
    assert exs[0].answer == "18" and "<<" not in exs[0].metadata["human_rationale"]


def test_unknown_benchmark_and_bad_dir(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'multiarith'"):
        load_benchmark("multiarit", tmp_path)
    with pytest.raises(DataError, match="no 'reasoning/' folder"):
        load_benchmark("multiarith", tmp_path)


def test_generic_jsonl_csv_with_column_mapping(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"q": "1+1?", "a": "2", "extra": 5}\n\n{"q": "2+2?", "a": "4"}\n')
    exs = load_file(p, "number", {"question": "q", "answer": "a"})
    assert [e.answer for e in exs] == ["2", "4"] and exs[0].metadata == {"extra": 5}
    c = tmp_path / "d.csv"
    c.write_text("question,answer,choices\nPick one,B,x|y|z\n")
    ex = load_file(c, "choice")[0]
    assert ex.choices == ["x", "y", "z"] and ex.answer == "B"


@pytest.mark.parametrize("content,match", [
    ('{"question": "q", "answer": "1"}\n{"question": "q2", "answer": \n', r"d.jsonl:2: malformed JSON"),
    ('{"question": "q"}\n', r"d.jsonl:1: missing field 'answer'"),
    ('[1, 2]\n', r"d.jsonl:1: expected a JSON object"),
    ('\n\n', r"no examples"),
])
def test_bad_input_names_file_and_line(tmp_path, content, match):
    p = tmp_path / "d.jsonl"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        load_file(p, "number")


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_file(tmp_path / "x.jsonl", "number")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type"):
        load_file(tmp_path / "x.txt", "number")


def test_hf_dataset_loader_on_a_local_folder(tmp_path):
    """`datasets.load_dataset` on a local folder: the same call users make with a hub id."""
    from cotdistill.tasks.files import load_hf_dataset

    (tmp_path / "train.jsonl").write_text('{"problem": "1+1?", "solution": "2"}\n{"problem": "2+3?", "solution": "5"}\n')
    (tmp_path / "test.jsonl").write_text('{"problem": "4+4?", "solution": "8"}\n')
    exs = load_hf_dataset(str(tmp_path), "number", "train", {"question": "problem", "answer": "solution"})
    assert [e.answer for e in exs] == ["2", "5"] and exs[0].question == "1+1?"
    assert len(load_hf_dataset(str(tmp_path), "number", "test", {"question": "problem", "answer": "solution"})) == 1
    with pytest.raises(DataError, match="missing field 'question'"):
        load_hf_dataset(str(tmp_path), "number", "train")
    with pytest.raises(DataError, match="cannot load Hugging Face dataset"):
        load_hf_dataset(str(tmp_path / "nope"), "number")


def test_release_rendering_of_date_understanding(shared_data):
    from cotdistill.tasks.release import load_release
    from cotdistill.teachers.replay import ReplayTeacher
    from cotdistill.teachers.base import GenParams, Request

    path = shared_data / "finetune-cot/teacher/text-davinci-002__zs_cot/D_date_understanding.json"
    train = load_release("date_understanding", path, shared_data, "train")
    test = load_release("date_understanding", path, shared_data, "test")
    bench = {e.id: e for e in load_benchmark("date_understanding", shared_data, "all")}
    assert len(train) + len(test) == 369 and not {e.id for e in train} & {e.id for e in test}
    ex = next(e for e in train if "Answer choices: (A) 05/01/2021, (B) 05/02/2021" in e.question)
    assert ex.choices[:2] == ["05/01/2021", "05/02/2021"] and ex.kind.value == "choice"
    # the same question and gold option as the benchmark file, in the release's order
    same = bench[ex.id]
    assert sorted(same.choices) == sorted(ex.choices)
    assert same.choices[ord(same.answer) - 65] == ex.choices[ord(ex.answer) - 65]
    # and the replayed teacher answers its prompts
    got = ReplayTeacher(path).complete([Request(f"Q: {ex.question}\nA: Let's think step by step.", GenParams(), 0)])
    assert got[0].text.strip()


def test_release_choices_must_be_lettered_in_order():
    from cotdistill.tasks.release import release_choices

    assert release_choices("Which? Answer choices: (A) 1 day, (B) 2, days, (C) x.", "f") == ["1 day", "2, days", "x"]
    with pytest.raises(DataError, match="f: a choice question without options"):
        release_choices("Which? Answer choices: (B) 1, (A) 2.", "f")
    with pytest.raises(DataError, match="without options"):
        release_choices("Which one?", "f")
