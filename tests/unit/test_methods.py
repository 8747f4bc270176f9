import pytest

from cotdistill.methods import get_method
from cotdistill.tasks.schema import Example

EX = Example(id="1", question="What is 12 * 3?", answer="36.0", kind="number")


def test_ft_cot_formats_match_the_paper():
    m = get_method("ft_cot")
    (p,) = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=False)
    assert (p.source, p.target) == ("What is 12 * 3? ###", " 12 * 3 = 36. --> 36")
    (p,) = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=True)
    assert (p.source, p.target) == ("What is 12 * 3?", "12 * 3 = 36. --> 36")
    assert len(m.train_pairs(EX, ["a", "b", "c"], seq2seq=False)) == 3  # diverse reasoning


def test_direct_format():
    (p,) = get_method("direct").train_pairs(EX, [], seq2seq=False)
    assert (p.source, p.target) == ("What is 12 * 3? ###", " 36")


@pytest.mark.parametrize("text,answer", [
    (" 12 * 3 = 36. --> 36", "36"),
    (" 12 * 3 = 35. --> 36 and 40", "36"),  # first candidate after the separator
    (" 12 * 3 = 36. so 36", "36"),  # no separator: last candidate
    (" --> ", None),
    (" 12 * 3 = 36. --> ", "36"),  # separator with nothing after it: fall back to the text
])
def test_ft_cot_answer_decoding(text, answer):
    assert get_method("ft_cot").parse(text, EX).answer == answer


def test_direct_answer_decoding():
    assert get_method("direct").parse(" 36", EX).answer == "36"
