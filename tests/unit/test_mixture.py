"""Task mixtures (one student, many tasks) and the FLAN CoT loader."""
import json

import pytest

from cotdistill.checks import problems
from cotdistill.config import load_config
from cotdistill.errors import ConfigError, DataError
from cotdistill.evaluate import summarize
from cotdistill.pipeline import Run, _split
from cotdistill.tasks import load_task
from cotdistill.tasks.benchmarks import load_benchmark
from cotdistill.tasks.flan import FAMILIES, load_flan_cot
from cotdistill.tasks.mixture import COPY, task_of


def mix(*entries, extra=()):
    return load_config(None, ["task.source=mixture", f"task.mixture={json.dumps(list(entries))}", *extra])


COIN = {"task": {"source": "synthetic", "name": "coin_flip", "n_train": 40, "n_test": 10}}
LETTERS = {"task": {"source": "synthetic", "name": "last_letters", "n_train": 30, "n_test": 8}}


def test_examples_are_tagged_and_ids_prefixed():
    train, test = load_task(mix(COIN, LETTERS).task)
    assert len(train) == 70 and len(test) == 18
    assert {task_of(e) for e in train} == {"coin_flip", "last_letters"}
    assert all(e.id.startswith(f"{task_of(e)}/") for e in train + test)
    assert len({e.id for e in train + test}) == 88


@pytest.mark.parametrize("weight,expected", [(1.0, 40), (2.0, 80), (2.5, 100), (0.5, 20)])
def test_weight_repeats_training_examples_not_test(weight, expected):
    train, test = load_task(mix({**COIN, "weight": weight}).task)
    assert len(train) == expected and len(test) == 10
    copies = [e for e in train if COPY in e.metadata]
    originals = {e.id for e in train if COPY not in e.metadata}
    assert all(c.metadata[COPY] in originals for c in copies)


def test_cap_keeps_a_random_sample_reproducibly():
    a, _ = load_task(mix({**COIN, "cap": 12}).task)
    b, _ = load_task(mix({**COIN, "cap": 12}).task)
    assert len(a) == 12 and [e.id for e in a] == [e.id for e in b]
    c, _ = load_task(mix({**COIN, "cap": 12}, extra=["task.seed=3"]).task)
    assert [e.id for e in c] != [e.id for e in a]


def test_validation_split_never_holds_a_copy_of_a_training_question():
    train, _ = load_task(mix({**COIN, "weight": 3}).task)
    rest, held = _split(train, 0.25, seed=0)
    base = lambda e: e.metadata.get(COPY) or e.id  # noqa: E731
    assert held and not {base(e) for e in rest} & {base(e) for e in held}


@pytest.mark.parametrize("entries,message", [
    ([{**COIN, "weight": 0}], "task.mixture.0.weight"),
    ([COIN, COIN], "occur twice"),
    ([{"task": {"source": "mixture", "mixture": [COIN]}}], "cannot itself be a mixture"),
    ([], "needs `task.mixture`"),
])
def test_bad_mixtures_are_refused_naming_the_field(entries, message):
    with pytest.raises(ConfigError, match=message):
        mix(*entries)


def test_mixture_field_without_mixture_source_is_refused():
    with pytest.raises(ConfigError, match="use task.source: mixture"):
        load_config(None, [f"task.mixture={json.dumps([COIN])}"])


def test_preflight_names_the_entry_with_an_unknown_task(tmp_path):
    cfg = mix(COIN, {"task": {"source": "synthetic", "name": "coin_flp"}}, extra=[f"out={tmp_path}"])
    found = problems(cfg)
    assert any(p.startswith("task.mixture[1] (coin_flp):") and "coin_flip" in p for p in found), found


def test_preflight_checks_each_entry_with_its_own_teacher(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "a", "question": "1+1?", "answer": "2", "rationale": "1+1=2."}\n' * 1)
    file_task = {"task": {"source": "file", "path": str(f), "kind": "number", "n_test": 1}}
    # the run's exact teacher cannot solve a file task: named for that entry only
    found = problems(mix(COIN, {**file_task, "name": "mine"}, extra=[f"out={tmp_path}/o"]), ["data", "teacher"])
    assert [p for p in found if "exact" in p] and all(p.startswith("task.mixture[1] (mine):") for p in found if "exact" in p)
    ok = problems(mix(COIN, {**file_task, "name": "mine", "teacher": {"backend": "dataset"}},
                      extra=[f"out={tmp_path}/o"]), ["data", "teacher"])
    assert not [p for p in ok if "exact" in p]


def test_an_entry_that_fails_to_load_is_named(tmp_path):
    cfg = mix({"task": {"source": "file", "path": str(tmp_path / "missing.jsonl"), "kind": "number"}, "name": "gone"})
    with pytest.raises(DataError, match=r"task.mixture\[0\] \(gone\)"):
        load_task(cfg.task)


def test_summary_reports_accuracy_per_task():
    preds = [{"task": t, "correct": c, "generated_tokens": 1, "prediction": "x", "finish_reason": "stop", "seconds": 0}
             for t, c in [("a", True), ("a", False), ("b", True), ("b", True)]]
    s = summarize(preds)
    assert s["by_task"]["a"]["accuracy"] == 50.0 and s["by_task"]["b"]["accuracy"] == 100.0
    assert s["task_mean_accuracy"] == 75.0 and s["accuracy"] == 75.0
    assert "by_task" not in summarize([{k: v for k, v in p.items() if k != "task"} for p in preds])


@pytest.mark.slow
def test_a_mixture_run_uses_each_entrys_teacher_and_reports_per_task(tmp_path):
    f = tmp_path / "doubles.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i),
                                       "rationale": f"{i} plus {i} is {2 * i}."}) for i in range(40)))
    doubles = {"name": "doubles", "teacher": {"backend": "dataset"},
               "task": {"source": "file", "path": str(f), "kind": "number", "n_test": 8, "columns": {"rationale": "rationale"}}}
    cfg = mix({**COIN, "weight": 1.5}, doubles, extra=[f"out={tmp_path / 'run'}", "teacher.backend=exact",
                                                        "methods=[ft_cot]", "train.max_steps=4", "train.eval_every=2",
                                                        "train.batch_size=8", "eval.max_new_tokens=8"])
    s = Run(cfg).run_all()
    row = s["methods"]["ft_cot"]
    assert set(row["by_task"]) == {"coin_flip", "doubles"} and row["n"] == 18
    curated = [json.loads(x) for x in (tmp_path / "run/curated.jsonl").read_text().splitlines()]
    by_task = {r["id"].split("/")[0] for r in curated}
    assert by_task == {"coin_flip", "doubles"}
    assert any(r["rationale"].endswith("is 6.") or "plus" in r["rationale"] for r in curated if r["id"].startswith("doubles/"))
    assert "## Per task" in (tmp_path / "run/report.md").read_text()


# -- FLAN CoT ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("family,kind", [("aqua", "choice"), ("creak", "yes_no"), ("ecqa", "choice"),
                                         ("gsm8k", "number"), ("qasc", "choice"), ("sensemaking", "choice"),
                                         ("strategyqa", "yes_no")])
def test_flan_cot_families_load_with_rationales(shared_data, family, kind):
    tr = load_benchmark(f"flan_cot_{family}", shared_data, "train")
    te = load_benchmark(f"flan_cot_{family}", shared_data, "test")
    assert tr and te and not {e.id for e in tr} & {e.id for e in te}
    assert 18 <= len(tr) / len(te) <= 20  # every 20th line is test
    assert {e.kind.value for e in tr} == {kind}
    assert all(e.metadata["rationale"] and "\\n" not in e.question for e in tr)
    if kind == "choice":
        assert all(e.choices and e.answer in "ABCDEFGH"[: len(e.choices)] for e in tr)


def test_flan_ecqa_gold_is_the_letter_of_the_answer_text(shared_data):
    ex = load_benchmark("flan_cot_ecqa", shared_data, "train")[0]
    assert ex.choices[0] == "bloody mess" and ex.answer == "A"


def test_flan_bad_lines_name_file_and_line(tmp_path):
    (tmp_path / "flan-cot").mkdir()
    (tmp_path / "flan-cot/aqua_train.tsv").write_text("Q?\\nOptions:\\n(A) 1\\n(B) 2\t(B)\tr\nQ2?\t2\n")
    with pytest.raises(DataError, match=r"aqua_train.tsv:2: expected 3 tab-separated fields"):
        load_flan_cot("aqua", tmp_path, "train")
    (tmp_path / "flan-cot/aqua_train.tsv").write_text("Q?\\nOptions:\\n(A) 1\\n(B) 2\t(C)\tr\n")
    with pytest.raises(DataError, match=r"aqua_train.tsv:1: field 'answer': '\(C\)' is none of the options"):
        load_flan_cot("aqua", tmp_path, "train")
    assert set(FAMILIES) == {"aqua", "creak", "ecqa", "gsm8k", "qasc", "sensemaking", "strategyqa"}
