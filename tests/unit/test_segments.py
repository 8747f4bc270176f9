"""Rationale segmentation and ES/AS labelling (AS-ES learning), against hand-labelled rationales:
GSM8K human solutions and SVAMP PaLM-540B rationales (texts copied from ../shared/data so that the
tests run without it)."""
import pytest

from cotdistill.errors import ConfigError
from cotdistill.segments import AS, ES, content_words, label, label_entropy, numbers, split_segments, statistics


@pytest.mark.parametrize("text, segments", [
    ("Tom has 3.5 kg. He sells 1.5 kg.", ["Tom has 3.5 kg.", "He sells 1.5 kg."]),
    ("It costs $1,200. That is a lot!", ["It costs $1,200.", "That is a lot!"]),
    ("Buy fruit, e.g. apples. Then eat.", ["Buy fruit, e.g. apples.", "Then eat."]),
    ("Mr. Smith has 4 cats. Dr. Who has 2.", ["Mr. Smith has 4 cats.", "Dr. Who has 2."]),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.",
     ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.", "Natalia sold 48+24 = <<48+24=72>>72 clips."]),
    ("Is it 5? Yes. It is 5.", ["Is it 5?", "Yes.", "It is 5."]),
    ("The price is 2.5 dollars. so the total is 5.", ["The price is 2.5 dollars. so the total is 5."]),
    ("  \n\n ", []),
    ("No final period", ["No final period"]),
])
def test_split_sentences(text, segments):
    assert split_segments(text) == segments


def test_split_clauses():
    assert split_segments("Tom has 3 apples, so he gives 1 away; Ann has 2, then she eats 1.", "clause") == [
        "Tom has 3 apples", "so he gives 1 away", "Ann has 2", "then she eats 1."]
    with pytest.raises(ConfigError, match="segment level"):
        split_segments("x", "word")


def test_evidence():
    assert numbers("It costs $1,200 and 3.50 per kg, 10% off, <<2*3=6>>6 left") == {"1200", "3.5", "10", "6"}
    assert content_words("The apples are on the table, <<1+1=2>>") == {"apples", "table"}


# (question, rationale, hand labels). Hand labels say what a segment does: restate the question
# (ES) or compute / infer something new (AS).
GSM8K = [
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
     "did Natalia sell altogether in April and May?",
     "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April "
     "and May.", [AS, AS]),
    ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
     "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.",
     [AS, AS]),
    ("Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. Her parents "
     "decided to give her $15 for that purpose, and her grandparents twice as much as her parents. How much more money "
     "does Betty need to buy the wallet?",
     "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\nBetty's grandparents gave her 15 * 2 = "
     "$<<15*2=30>>30.\nThis means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.", [AS, AS, AS]),
]
SVAMP_PALM = [
    ("Luke scored 84 points after playing 2 rounds of a trivia game. If he gained the same number of points each "
     "round\nHow many points did he score per round?",
     "Luke scored 84 points after 2 rounds. So he scored 84 points in 2 rounds. 84 / 2 = 42.", [ES, ES, AS]),
    ("Faye was placing her pencils and crayons into 7 rows with 36 pencils and 30 crayons in each row.\nHow many "
     "crayons does she have?",
     "Faye has 7 rows of pencils and crayons. Each row has 36 pencils and 30 crayons. So she has 7 * 36 pencils and "
     "7 * 30 crayons. 7 * 36 is 252.", [ES, ES, AS, AS]),
    ("Julia played tag with 17 kids on monday, 15 kids on tuesday and 2 kids on wednesday.\nHow many kids did she "
     "play with altogether?",
     "Julia played with 17 kids on monday. 15 kids on tuesday. 2 kids on wednesday. So she played with 17 + 15 + 2 = "
     "34 kids altogether.", [ES, ES, ES, AS]),
    ("Danny collects bottle caps and wrappers. He found 22 bottle caps and 8 wrappers at the park. Now he has 28 "
     "bottle caps and 63 wrappers in his collection.\nHow many bottle caps did danny have at first?",
     "Danny found 22 bottle caps and 8 wrappers at the park. So he had 22 + 8 = 30 bottle caps and wrappers. He now "
     "has 28 bottle caps and 63 wrappers. So he had 30 - 28 = 2 bottle caps at first.", [ES, AS, ES, AS]),
    ("Bobby ate 23 pieces of candy. If he initially had 30 pieces of candy\nHow many pieces of candy does he still "
     "have left?",
     "Bobby started with 30 pieces of candy. He ate 23. So he has 30 - 23 = 7 pieces of candy left.", [ES, ES, AS]),
    ("A mailman has to give 4 pieces of junk mail to each house in each of the 16 blocks. If there are 17 houses in "
     "each block\nHow many pieces of junk mail should he give in total?",
     "There are 16 blocks. Each block has 17 houses. So there are 16 * 17 = 272 houses. Each house gets 4 pieces of "
     "junk mail. So there are 272 * 4 = 1088 pieces of junk mail.", [ES, ES, AS, ES, AS]),
]
# The one segment the overlap rule labels otherwise: it only multiplies the question's own numbers
# without a result ("So she has 7 * 36 pencils and 7 * 30 crayons"), so all its evidence is restated.
OVERLAP_DISAGREES = {("Faye was placing", 2): ES}


@pytest.mark.parametrize("question, rationale, hand", GSM8K + SVAMP_PALM, ids=lambda x: x[:16] if isinstance(x, str) else "")
def test_overlap_rule_against_hand_labels(question, rationale, hand):
    segs = split_segments(rationale)
    assert len(segs) == len(hand)  # the segmentation the hand labels were written for
    expected = [OVERLAP_DISAGREES.get((question[:16], i), h) for i, h in enumerate(hand)]
    assert [s.kind for s in label(segs, question)] == expected


def test_overlap_agreement_and_statistics():
    labelled = [label(split_segments(r), q) for q, r, _ in GSM8K + SVAMP_PALM]
    hand = [h for _, _, hs in GSM8K + SVAMP_PALM for h in hs]
    got = [s.kind for r in labelled for s in r]
    assert sum(a == b for a, b in zip(got, hand)) == len(hand) - 1 == 29
    st = statistics(labelled)
    assert st["rationales"] == 9 and st["segments"] == 30 and st["no_segment"] == 0
    assert st["es_share"] + st["as_share"] == pytest.approx(1.0)
    assert st["es_share"] == pytest.approx(15 / 30)  # 14 hand ES + the Faye segment
    # a stricter threshold turns partial restatements into AS; a looser one the reverse
    loose = [s.kind for s in label(["84 / 2 = 42."], "84 points in 2 rounds", threshold=0.5)]
    assert loose == [ES]


def test_entropy_rule_on_a_causal_lm():
    from cotdistill.students import load_student

    model, tok, _ = load_student("preset:tiny")
    q = "Tom has 3 apples."
    segs = ["Tom has 3 apples.", "He eats 1."]
    out = label_entropy(segs, q, model, tok, threshold=100.0)
    assert [s.kind for s in out] == [ES, ES] and all(s.score > 0 for s in out)  # nats, all under 100
    assert [s.kind for s in label_entropy(segs, q, model, tok, threshold=0.0)] == [AS, AS]
    with pytest.raises(ConfigError, match="reference causal LM"):
        label(segs, q, rule="entropy")
    with pytest.raises(ConfigError, match="unknown segment labelling rule"):
        label(segs, q, rule="magic")
