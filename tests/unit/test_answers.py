"""Table-driven tests of the one extractor per answer kind, failures included."""
import pytest

from cotdistill.tasks.answers import candidates, extract, is_correct, normalize_gold


@pytest.mark.parametrize("text,expected", [
    ("The answer is 42.", ["42"]),
    ("1,234 apples", ["1234"]),
    ("$1,234.50 in total", ["1234.5"]),
    ("It costs €3.", ["3"]),
    ("-5 degrees", ["-5"]),
    ("−7 (unicode minus)", ["-7"]),
    ("minus 7", ["-7"]),
    ("5-3", ["5", "3"]),  # binary minus is not a sign
    ("74 - 35 = 39", ["74", "35", "39"]),
    ("3/4 of a cake", ["0.75"]),
    ("1 / 2", ["0.5"]),
    (".5 litres", ["0.5"]),
    ("12 km and 3.25 kg", ["12", "3.25"]),
    ("10.0", ["10"]),
    ("Today is 04/30/2021.", []),  # a date is not a fraction
    ("no digits here", []),
    ("x/0", []),
    ("1,23", ["1", "23"]),  # not a thousands group
])
def test_number_candidates(text, expected):
    assert candidates(text, "number") == expected


@pytest.mark.parametrize("text,choices,expected", [
    ("(B)", None, "B"),
    ("the answer is (c).", None, "C"),
    ("B) is right", None, "B"),
    ("Among A through E, the answer is b", None, "B"),
    ("The answer: D", None, "D"),
    ("E", None, "E"),
    ("A revolving door Is what I think", None, None),  # never "any capital letter"
    ("April 30 is (F).", None, "F"),
    ("I pick (G)", ["x", "y", "z"], None),  # not a valid option
    ("It is 05/01/2021.", ["06/12/2021", "05/01/2021"], "B"),  # option text names its letter
])
def test_choice_extraction(text, choices, expected):
    assert extract(text, "choice", choices) == expected


@pytest.mark.parametrize("text,expected", [
    ('"Yes, the coin is heads up."', "yes"),
    ("No.", "no"),
    ("The coin is not heads up, so no", "no"),
    ("true", "yes"),
    ("Nothing", None),  # "nothing" is not "no"
    ("yesterday", None),
])
def test_yes_no(text, expected):
    assert extract(text, "yes_no") == expected


@pytest.mark.parametrize("text,expected", [
    (' "yajo".', "yajo"),
    ("The answer is yajo.", "yajo"),
    ("  Yajo  ", "yajo"),
    ("", None),
])
def test_text(text, expected):
    assert extract(text, "text") == expected


def test_first_and_last_positions():
    assert extract("3 then 4 then 5", "number", position="first") == "3"
    assert extract("3 then 4 then 5", "number", position="last") == "5"


@pytest.mark.parametrize("gold,kind,pred,ok", [
    ("39.0", "number", "39", True),
    ("1,000", "number", "1000", True),
    ("0.1", "number", "0.100000", True),
    ("39", "number", "38", False),
    ("(B)", "choice", "B", True),
    ("Yes", "yes_no", "yes", True),
    ("Yajo", "text", "yajo", True),
    ("comp.graphics", "label", "comp/graphics", True),
    ("39", "number", None, False),
])
def test_gold_normalisation_and_match(gold, kind, pred, ok):
    assert is_correct(pred, normalize_gold(gold, kind), kind) is ok


def test_leading_option_letter_and_spaced_text():
    assert extract(" C: 01/02/2008.", "choice") == "C"
    assert is_correct(extract(' "n a o a".', "text"), "naoa", "text")
    assert not is_correct(extract(' "aanck".', "text"), "aank", "text")


def test_choices_from_question():
    from cotdistill.tasks.schema import choices_from_question

    q = "What day? Which choice is true? Answer choices: (A) 06/12/2021, (B) 03/11/2021, (C) 05/01/2021."
    assert choices_from_question(q) == ["06/12/2021", "03/11/2021", "05/01/2021"]
    assert choices_from_question("No options (here).") is None
