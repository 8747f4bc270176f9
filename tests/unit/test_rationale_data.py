"""Data sets that carry their own rationales: the `dataset` teacher, SVAMP with PaLM rationales,
and the restating word problems."""
import json

import pytest

from cotdistill.config import load_config
from cotdistill.errors import DataError, TeacherError
from cotdistill.pipeline import Run
from cotdistill.tasks.benchmarks import load_benchmark
from cotdistill.tasks.palm import equation_value, load_svamp_palm
from cotdistill.tasks.schema import Example
from cotdistill.teachers.dataset import DatasetTeacher


def test_svamp_palm_from_the_release(shared_data):
    tr, te = load_benchmark("svamp_palm", shared_data, "train"), load_benchmark("svamp_palm", shared_data, "test")
    assert (len(tr), len(te)) == (800, 200)
    assert tr[0].answer == "42" and tr[0].metadata["rationale"].endswith("84 / 2 = 42.")
    assert "The answer is" not in tr[0].metadata["rationale"] and all(e.metadata["rationale"] for e in te)
    # one release rationale runs on into the next few-shot exemplar without "The answer is"
    assert not [e.id for e in tr + te if "Q: " in e.metadata["rationale"]]
    jake = next(e for e in tr if e.question.startswith("Jake has 7 fewer peaches than Steven and 9"))
    assert jake.metadata["rationale"].endswith("So Jake has 16 - 7 = 9 peaches.")


@pytest.mark.parametrize("text, value", [("( 84.0 / 2.0 )", 42.0), ("( ( 3.0 + 4.0 ) * 2.0 )", 14.0), ("-1 - 2", -3)])
def test_equation_value(text, value):
    assert equation_value(text, "f:1") == value


@pytest.mark.parametrize("text", ["__import__('os')", "2 ** 8", "x + 1", "1 / 0", "(1"])
def test_equation_value_refuses_what_is_not_arithmetic(text):
    with pytest.raises(DataError, match="f:3: field 'label'"):
        equation_value(text, "f:3")


def test_svamp_palm_rationale_count_must_match(tmp_path):
    base = tmp_path / "dss-palm/svamp"
    (base / "llm").mkdir(parents=True)
    (base / "svamp_train.json").write_text(json.dumps({"input": "Tom has 2.", "label": "( 1.0 + 1.0 )"}) + "\n")
    (base / "llm/train_CoT_0.json").write_text(json.dumps([]))
    with pytest.raises(DataError, match="0 PaLM rationales for the 1 questions"):
        load_svamp_palm(tmp_path, "train")
    (base / "llm/train_CoT_0.json").write_text(json.dumps(["1 + 1 = 2. The answer is (1 + 1).\n\nQ: next"]))
    (e,) = load_svamp_palm(tmp_path, "train")
    assert e.answer == "2" and e.metadata["rationale"] == "1 + 1 = 2."
    (base / "llm/train_CoT_0.json").write_text(json.dumps(["1 + 1 = 2.\n\nQ: Ann has 4. How many?\nA: 4."]))
    assert load_svamp_palm(tmp_path, "train")[0].metadata["rationale"] == "1 + 1 = 2."


def test_dataset_teacher_answers_both_stages_and_refuses_examples_without_rationales():
    ex = Example(id="1", question="Tom has 3 apples.\nHow many?", answer="3", kind="number",
                 metadata={"human_rationale": "Tom has 3 apples."})
    t = DatasetTeacher([ex], "toy")
    from cotdistill.teachers.base import Request

    s1 = t._complete([Request("Q: Tom has 3 apples.\nHow many?\nA: Let's think step by step.", {}, 0)])[0]
    assert s1.text == " Tom has 3 apples."
    s2 = t._complete([Request("Q: Tom has 3 apples.\nHow many?\nA: Let's think step by step. Tom has 3 apples. "
                              "Therefore, the answer (arabic numerals) is", {}, 0)])[0]
    assert s2.text == " 3."
    with pytest.raises(TeacherError, match="not in the data set"):
        t._complete([Request("Q: Another question\nA: Let's think step by step.", {}, 0)])
    bare = Example(id="2", question="q", answer="1", kind="number")
    with pytest.raises(TeacherError, match="1 of 2 examples of toy carry no rationale"):
        DatasetTeacher([ex, bare], "toy")


def test_dataset_teacher_through_the_pipeline(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps({"id": str(i), "question": f"What is {i} plus 1?", "answer": str(i + 1),
                                       "why": f"{i} + 1 = {i + 1}."}) for i in range(12)))
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.source=file", f"task.path={f}", "task.kind=number",
                             "task.n_test=2", "task.columns={rationale: why}", "teacher.backend=dataset"])
    run = Run(cfg)
    train, _, curated = run.prepare()
    assert len(curated) == len(train) == 10
    assert {r["rationale"] for r in curated} == {e.metadata["rationale"] for e in train}


def test_restating_word_problems_mix_extractive_and_abstractive_steps():
    from cotdistill.segments import label, split_segments
    from cotdistill.tasks.synthetic import make_synthetic
    from cotdistill.teachers.exact import ExactTeacher

    t = make_synthetic("word_problems", {"restate": True, "n_steps": 3})
    ex = t.generate(1, seed=0)[0]
    rationale, answer = t.solve(ex.question)
    kinds = [s.kind for s in label(split_segments(rationale), ex.question)]
    assert kinds[:3] == ["ES", "ES", "AS"] and kinds.count("ES") == 4 and answer == ex.answer
    assert make_synthetic("word_problems", {"n_steps": 3}).solve(ex.question)[0].count(".") < rationale.count(".")
    # the cache must not mix rationales of the two styles
    assert ExactTeacher("word_problems", {"restate": True}).identity != ExactTeacher("word_problems", {}).identity


def test_a_math_task_is_curated_and_scored_by_value(tmp_path):
    """kind: math end to end: the teacher's boxed answer is read from its rationale and kept when
    it equals the gold by value; a trained student's predictions are scored the same way."""
    rows = [{"id": str(i), "question": f"What is {i} halves?", "answer": f"{i}/2",
             "why": f"{i} halves make " + (rf"\boxed{{\frac{{{2 * i}}}{{4}}}}" if i % 3 else rf"\boxed{{{i + 1}}}") + "."}
            for i in range(1, 13)]
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.source=file", f"task.path={f}", "task.kind=math",
                             "task.n_test=2", "task.columns={rationale: why}", "teacher.backend=dataset",
                             "curate.answer_source=rationale", "methods=[ft_cot]", "train.max_steps=2",
                             "train.eval_every=2", "eval.max_new_tokens=8"])
    run = Run(cfg)
    train, _, curated = run.prepare()
    wrong = {e.id for e in train if int(e.id) % 3 == 0}  # \boxed{i + 1} is not i/2
    assert {r["id"] for r in curated} == {e.id for e in train} - wrong and wrong
    stats = json.loads((tmp_path / "run" / "curation_stats.json").read_text())
    assert stats["dropped"]["wrong_answer"] == len(wrong)
    s = run.run_all()
    preds = [json.loads(l) for l in (tmp_path / "run" / "ft_cot" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 2 and s["methods"]["ft_cot"]["n"] == 2
