"""Table-driven tests of the one extractor per answer kind, failures included."""
import pytest

from cotdistill.tasks.answers import abstains, candidates, extract, gold_problem, is_correct, normalize_gold


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
    # letters inside ordinary words and phrases are not options
    ("The answer is a car.", None, None),
    ("My choice is a red one", None, None),
    ("The answer is a.", None, "A"),  # a lone lower-case letter ending the clause is an option
    ("answer: b", None, "B"),
    ("I know the answer.", ["yes", "no"], None),  # the option "no" is not inside "know"
    ("I think no.", ["yes", "no"], "B"),
    ("(A) is wrong because I said so; the answer is (C)", None, "A"),  # reading order: first marker
])
def test_choice_extraction(text, choices, expected):
    assert extract(text, "choice", choices) == expected


@pytest.mark.parametrize("text,expected", [
    # an answer word leading the answer text
    ('"Yes, the coin is heads up."', "yes"),
    ("No.", "no"),
    ("no", "no"),
    (" yes", "yes"),
    ("Yes it is.", "yes"),
    ("No it is not.", "no"),
    ("No, because the coin was flipped twice.", "no"),
    (" no - the coin is not heads up anymore.", "no"),  # text-davinci-002 stage 2, Coin Flip
    (": Yes", "yes"),  # the stage-2 prompt ends "the answer is", so completions may start with ':'
    (":\n\nYes, the coin is still heads up.", "yes"),
    ("true", "yes"),
    ("False.", "no"),
    ("Correct.", "yes"),
    ("Incorrect", "no"),
    # an answer phrase or a conclusion anywhere
    ("The coin is not heads up, so no", "no"),
    ("Let me think. So, no.", "no"),
    ("Therefore, yes.", "yes"),
    ("Flips: 3. So the answer is yes, the coin is still heads up.", "yes"),
    ("The answer (Yes or No) is no.", "no"),
    ("Answer: No", "no"),
    ("The answer is true.", "yes"),
    # free text that merely contains the words
    ("Nothing", None),  # "nothing" is not "no"
    ("yesterday", None),
    ("No one flipped the coin, so it is heads up.", None),
    ("No matter who flips it, the coin ends tails up.", None),
    ("There is no way to flip a coin twice at once.", None),
    ("It is true that Whitney flipped the coin.", None),
    ("That would be correct if Erika had flipped it.", None),
    ("The coin is heads up; it is not false that it was flipped.", None),
    ("So no one knows.", None),  # "so no" must end its clause
    # hedges: no answer, however many answer words they contain
    ("There is no definitive answer to this question.", None),
    ("There's no answer to this.", None),
    ("It depends on who flipped the coin.", None),
    ("It is unclear whether the coin is heads up.", None),
    ("This cannot be determined from the information given.", None),
    ("We don't know for sure, but probably no.", None),
    ("No definitive answer can be given.", None),
    ("It's impossible to say; no information about the last flip.", None),
    ("There is not enough information. No.", None),
    ("It depends, but the answer is yes.", "yes"),  # an answer phrase commits to an answer
    ("Yes, for sure.", "yes"),
    ("No, I am not sure.", None),
    # an adverb of likelihood before the word commits (text-davinci-002 stage-2 answers)
    (" most likely no.", "no"),
    (" probably no.", "no"),
    (' probably "no."', "no"),
    (" most likely yes, the trees in that region will be changing colors in September.", "yes"),
    ("Almost certainly yes.", "yes"),
    ("Definitely no", "no"),
    ("Likely, yes.", "yes"),
    (": Very likely false.", "no"),
    ("Probably not.", None),  # no answer word
    ("Probably nobody flipped it.", None),  # "no" must end its clause
    ("Probably, no one knows.", None),
    # both answers, or the question's own options: no answer
    ("Yes and no.", None),
    ("Both yes and no.", None),
    (" yes or no", None),
    ("Yes, and no one else flipped it.", "yes"),
])
def test_yes_no(text, expected):
    assert extract(text, "yes_no") == expected


@pytest.mark.parametrize("text", [
    "There is no definitive answer to this question.",
    "It depends on the coin.",
    "The outcome is unclear.",
    "It cannot be determined.",
    "There are 2 possible answers: 5 or 7.",
    "We don't know for sure.",
    "There is not enough information to answer.",
])
def test_abstentions_are_recognised(text):
    assert abstains(text)
    assert candidates(text, "number") == candidates(text, "yes_no") == candidates(text, "text") == []


@pytest.mark.parametrize("text", [
    "The answer is 5.",
    "No, the coin is tails up.",
    "It depends on nothing: the answer is 3.",
    "Whitney flips the coin, so it's now tails up.",
])
def test_answers_are_not_abstentions(text):
    assert not abstains(text)


@pytest.mark.parametrize("text,expected", [
    ("There are 2 possible answers: 3 or 5.", None),  # a hedge is no number
    ("Either 3 or 5, it depends on the day.", None),
    ("It depends on the day, but the answer is 5.", "5"),
    ("He sold x books, and we don't know what x is.", None),  # text-davinci-002 on SVAMP
    ("We need 2 steps. The answer is 7.", "2"),  # first candidate; stage 2 restates the answer first
])
def test_number_hedges(text, expected):
    assert extract(text, "number") == expected


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


@pytest.mark.parametrize("gold,kind,choices,problem", [
    ("banana", "number", None, "'banana' is not a number"),
    ("3 or 4", "number", None, "holds 2 numbers"),
    ("1,000", "number", None, None),
    ("-3/4", "number", None, None),
    ("maybe", "yes_no", None, "is not yes/no"),
    ("True", "yes_no", None, None),
    ("No", "yes_no", None, None),
    ("B", "choice", None, "needs its options"),
    ("F", "choice", ["x", "y"], "not one of the options A, B"),
    ("(b)", "choice", ["x", "y"], None),
    ("Paris", "choice", ["London", "Paris"], None),  # the option's text names its letter
    ("  ", "text", None, "empty"),
    ("naoa", "text", None, None),
])
def test_gold_must_parse_under_its_kind(gold, kind, choices, problem):
    got = gold_problem(gold, kind, choices)
    assert (got is None) if problem is None else (problem in got)


# -- math: expressions compared by value through math-verify ------------------------------------
@pytest.mark.parametrize("text,expected", [
    (r"So the answer is \boxed{\frac{1}{2}}.", [r"\frac{1}{2}"]),
    (r"We get $x = 3$, so the answer is $\boxed{2\sqrt{3}}$", [r"2\sqrt{3}"]),  # \boxed{} wins over order
    (r"2\sqrt{3}", [r"2\sqrt{3}"]),  # a bare expression (a student's answer after -->) is read as LaTeX
    ("x^2+1", ["x^2+1"]),
    ("so the answer is 7 apples", ["7"]),
    ("there is nothing to read here", []),
    ("It depends on the radius.", []),  # an abstention, as for every kind
])
def test_math_candidates(text, expected):
    assert candidates(text, "math") == expected


@pytest.mark.parametrize("gold,pred,ok", [
    (r"\boxed{\frac{1}{2}}", "thus 0.5", True),
    (r"\frac{1}{2}", "2/4", True),
    (r"\frac{1}{2}", "1/3", False),
    ("1+x^2", "x^2 + 1", True),
    (r"2\sqrt{3}", r"\sqrt{12}", True),
    (r"2\sqrt{3}", "2", False),
])
def test_math_answers_match_by_value(gold, pred, ok):
    assert is_correct(extract(pred, "math"), normalize_gold(gold, "math"), "math") is ok


def test_math_gold_must_be_readable():
    assert gold_problem("hello there", "math") == "'hello there' is not an expression math-verify can read"
    assert gold_problem(r"\frac{3}{4}", "math") is None


def test_math_scoring_works_off_the_main_thread():
    """The server scores in worker threads, where math-verify's SIGALRM timeout cannot be set."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: is_correct(extract("0.25", "math"), normalize_gold(r"\frac{1}{4}", "math"),
                                              "math")).result()


def test_math_without_math_verify_says_what_to_install(monkeypatch):
    import builtins

    from cotdistill.checks import problems
    from cotdistill.config import load_config
    from cotdistill.errors import ConfigError

    real = builtins.__import__

    def no_math_verify(name, *a, **kw):
        if name == "math_verify":
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_math_verify)
    with pytest.raises(ConfigError, match=r"pip install 'cotdistill\[math\]'"):
        candidates("1/2", "math")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    cfg = load_config(None, ["task.source=file", "task.path=x.jsonl", "task.kind=math"])
    assert any(p.startswith("`task.kind`: answer kind 'math'") for p in problems(cfg, ["data"]))
