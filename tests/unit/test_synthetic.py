import pytest

from cotdistill.errors import ConfigError, DataError
from cotdistill.tasks.answers import extract, is_correct, normalize_gold
from cotdistill.tasks.synthetic import SYNTHETIC, make_synthetic


@pytest.mark.parametrize("name", SYNTHETIC.names())
def test_reproducible_distinct_and_self_consistent(name):
    task = make_synthetic(name)
    a, b = task.generate(30, seed=3), task.generate(30, seed=3)
    assert [e.question for e in a] == [e.question for e in b]
    assert len({e.question for e in a}) == 30
    assert task.generate(30, seed=4)[0].question != a[0].question or name == "coin_flip"
    for e in a:
        rationale, answer = task.solve(e.question)
        assert answer == e.answer and rationale == e.metadata["rationale"]
        # the rationale's last answer candidate is the gold answer: curation would keep it
        assert is_correct(extract(rationale, e.kind, e.choices, "last"), normalize_gold(e.answer, e.kind), e.kind)


def test_difficulty_knobs_change_the_questions():
    short = make_synthetic("arithmetic", {"n_ops": 1}).generate(5)
    long = make_synthetic("arithmetic", {"n_ops": 6}).generate(5)
    assert all(e.question.count(" ") < f.question.count(" ") for e, f in zip(short, long))
    assert make_synthetic("coin_flip", {"n_people": 7}).generate(1)[0].question.count("flip") >= 7


@pytest.mark.parametrize("name,q,answer", [
    ("multiplication", "What is 347 * 28?", "9716"),
    ("arithmetic", "Compute 10 * 2 - 17 * 9, left to right.", "27"),
    ("coin_flip", 'A coin is heads up. Ka flips the coin. Bo flips the coin. Is the coin still heads up? Note that "flip" here means "reverse".', "yes"),
    ("last_letters", 'Take the last letters of each words in "Whitney Erika Tj Benito" and concatenate them.', "yajo"),
])
def test_solvers_on_literal_questions(name, q, answer):
    assert make_synthetic(name).solve(q)[1] == answer


def test_unparseable_question_and_bad_knobs():
    with pytest.raises(DataError, match="cannot solve"):
        make_synthetic("multiplication").solve("What is love?")
    with pytest.raises(DataError, match="bad parameters"):
        make_synthetic("coin_flip", {"n_people": 0})
    # another task's knobs (a config's params kept while --set changes task.name): named, with the right ones
    with pytest.raises(DataError, match=r"n_ops: unknown parameter.*its parameters: n_words; `--set task.params=\{\}`"):
        make_synthetic("last_letters", {"n_ops": 3})
    with pytest.raises(ConfigError, match="Did you mean 'coin_flip'"):
        make_synthetic("coin_flipp")
    with pytest.raises(DataError, match="fewer than"):
        make_synthetic("coin_flip", {"n_people": 1}).generate(200)


def test_mixed_set_has_equal_shares_of_its_parts_with_their_own_kinds():
    task = make_synthetic("mixed", {"parts": [{"name": "coin_flip", "params": {"n_people": 3}},
                                              {"name": "multiplication"}, {"name": "last_letters"}]})
    exs = task.generate(31, seed=1)
    by_part = {p: [e for e in exs if e.metadata["part"] == p] for p in range(3)}
    assert [len(v) for v in by_part.values()] == [11, 10, 10]
    assert {e.kind.value for e in by_part[0]} == {"yes_no"} and {e.kind.value for e in by_part[1]} == {"number"}
    assert len({e.id for e in exs}) == 31 and all(e.id.startswith("mixed") for e in exs)
    for e in exs:  # the exact teacher's solver dispatches on the question's format
        assert task.solve(e.question)[1] == e.answer
    with pytest.raises(DataError, match="cannot solve"):
        task.solve("What is the capital of France?")
    with pytest.raises(DataError, match="cannot contain another 'mixed'"):
        make_synthetic("mixed", {"parts": [{"name": "mixed"}]}).generate(3)
