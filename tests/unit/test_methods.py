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


# -- answer-first methods ------------------------------------------------------------------------
from cotdistill.config import load_config  # noqa: E402
from cotdistill.errors import ConfigError  # noqa: E402

WORDS = Example(id="2", question='Take the last letters of each words in "Eve Bob".', answer="eb", kind="text")


def test_post_formats_put_the_answer_first():
    m = get_method("post")
    (p,) = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=False)
    assert (p.source, p.target, p.weight) == ("What is 12 * 3? ###", " 36 --> 12 * 3 = 36.", 1.0)
    (p,) = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=True)
    assert (p.source, p.target) == ("What is 12 * 3?", "36 --> 12 * 3 = 36.")
    assert m.stop() == ("-->",) and get_method("post", {"explain": True}).stop() == ()


@pytest.mark.parametrize("seq2seq", [False, True])
def test_post_logs_the_answer_tokens_loss_as_its_own_group(seq2seq):
    m = get_method("post")
    (full,) = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=seq2seq)
    (group,) = m.loss_groups(EX, ["12 * 3 = 36.", "36 = 12 * 3."], seq2seq=seq2seq)
    name, p = group
    # the answer and separator exactly as the training target starts, without the end of sequence
    assert name == "answer" and p.source == full.source and not p.ends
    assert full.target.startswith(p.target) and p.target.rstrip().endswith("36 -->")
    assert m.loss_groups(EX, [], seq2seq=seq2seq) == []  # no kept rationale: not a validation pair either


@pytest.mark.parametrize("seq2seq", [False, True])
def test_post_answer_weight_adds_the_answer_alone_as_a_weighted_pair(seq2seq):
    m = get_method("post", {"answer_weight": 0.5})
    a, b, ans = m.train_pairs(EX, ["12 * 3 = 36.", "36 = 12 * 3."], seq2seq=seq2seq)
    assert (a.weight, b.weight, ans.weight) == (1.0, 1.0, 0.5) and not ans.ends and a.ends
    assert ans.source == a.source and a.target.startswith(ans.target) and ans.target.rstrip().endswith("36 -->")
    assert m.train_pairs(EX, [], seq2seq=seq2seq) == []  # no kept rationale: no pair at all
    assert len(get_method("post").train_pairs(EX, ["r"], seq2seq=seq2seq)) == 1  # off by default
    with pytest.raises(ConfigError, match="answer_weight"):
        get_method("post", {"answer_weight": -1})


@pytest.mark.parametrize("text,answer,rationale", [
    (" 36 ", "36", None),  # stopped at the separator: the answer alone
    (" 36 --> 12 * 3 = 36.", "36", "12 * 3 = 36."),  # --explain: the rationale follows
    (" 35 --> 12 * 3 = 36.", "35", "12 * 3 = 36."),  # the answer is what came first, not the rationale's
    (" --> 12 * 3 = 36.", None, "12 * 3 = 36."),  # no answer before the separator: none, never the rationale's
    (" 36 and more", "36", None),
])
def test_post_answer_decoding(text, answer, rationale):
    got = get_method("post").parse(text, EX)
    assert (got.answer, got.rationale) == (answer, rationale)


def test_post_decodes_text_answers():
    assert get_method("post").parse(' "eb" ', WORDS).answer == "eb"


def test_step_by_step_is_weighted_multi_task():
    m = get_method("step_by_step")
    pred, expl = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=False)
    assert (pred.source, pred.target, pred.weight) == ("predict: What is 12 * 3? ###", " 36", 0.5)
    assert (expl.source, expl.target, expl.weight) == ("explain: What is 12 * 3? ###", " 12 * 3 = 36.", 0.5)
    pred, expl = get_method("step_by_step", {"alpha": 0.8}).train_pairs(EX, ["r"], seq2seq=True)
    assert (pred.source, pred.target, pred.weight) == ("predict: What is 12 * 3?", "36", 0.8)
    assert (expl.source, expl.target) == ("explain: What is 12 * 3?", "r") and expl.weight == pytest.approx(0.2)
    assert len(m.train_pairs(EX, ["a", "b"], seq2seq=False)) == 4
    assert m.source(EX, False) == "predict: What is 12 * 3? ###"  # inference runs predict: only
    assert m.stop() == () and m.parse(" 36", EX).answer == "36"


def test_adaptive_trains_both_modes_with_prefixes():
    m = get_method("adaptive")
    pre, post = m.train_pairs(EX, ["12 * 3 = 36."], seq2seq=False)
    assert (pre.source, pre.target) == ("pre: What is 12 * 3? ###", " 12 * 3 = 36. --> 36")
    assert (post.source, post.target) == ("post: What is 12 * 3? ###", " 36 --> 12 * 3 = 36.")
    pre, post = m.train_pairs(EX, ["r"], seq2seq=True)
    assert (pre.source, post.source) == ("pre: What is 12 * 3?", "post: What is 12 * 3?")
    assert m.formats["post"].parse(" 36 ", EX).answer == "36" and m.formats["pre"].parse(" 12 * 3 = 36. --> 36", EX).answer == "36"


def test_method_options_are_validated_with_their_path():
    cfg = load_config(None, ["method_options.step_by_step.alpha=0.3", "methods=[step_by_step]"])
    assert cfg.method("step_by_step").opts.alpha == 0.3
    with pytest.raises(ConfigError, match=r"method_options\.post\.explan.*unknown option.*options: explain"):
        load_config(None, ["method_options.post.explan=true"])
    with pytest.raises(ConfigError, match=r"method_options\.step_by_step\.alpha"):
        load_config(None, ["method_options.step_by_step.alpha=1.5"])
    with pytest.raises(ConfigError, match="Did you mean 'adaptive'"):
        load_config(None, ["method_options.adaptiv.threshold=0.4"])
    with pytest.raises(ConfigError, match="unknown option"):
        get_method("direct", {"alpha": 1})


def test_inference_options_do_not_touch_the_training_fingerprint():
    a = get_method("adaptive", {"explain": True, "threshold": 0.9, "mode": "pre"}).training_options()
    assert a == get_method("adaptive").training_options() and "route_fraction" in a
    assert get_method("post", {"explain": True}).training_options() == {"answer_weight": 0.0}
    assert get_method("step_by_step", {"alpha": 0.7}).training_options() == {"alpha": 0.7}
