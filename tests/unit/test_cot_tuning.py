"""CoT fine-tuning (the CoT Collection): pair format, direct share, and option scoring by
log-probability on random-weight students."""
import pytest
import torch

from cotdistill import hf
from cotdistill.methods import get_method
from cotdistill.students import load_student
from cotdistill.tasks.schema import Example

MC = Example(id="q1", question="Which is red? Answer Choices: (A) sky (B) apple", answer="B", kind="choice",
             choices=["sky", "apple"])


def test_pairs_write_the_rationale_then_the_option_text():
    m = get_method("cot_tuning")
    (p,) = m.train_pairs(MC, ["Apples are red."], seq2seq=False)
    assert p.source == "Which is red? Answer Choices: (A) sky (B) apple\n\nLet's think step by step.\n"
    assert p.target == "Apples are red.\n[ANSWER] apple"
    assert m.train_pairs(MC, [], seq2seq=False) == []
    every = get_method("cot_tuning", {"direct_share": 1.0}).train_pairs(MC, ["r"], seq2seq=False)
    assert every[-1].source.endswith("\n\n") and every[-1].target == "[ANSWER] apple"
    (d,) = get_method("cot_tuning_direct").train_pairs(MC, [], seq2seq=False)
    assert (d.source, d.target) == (every[-1].source, every[-1].target)
    assert m.parse("Apples are red.\n[ANSWER] apple", MC).answer == "B"


@pytest.mark.parametrize("student", ["preset:tiny", "preset:t5-tiny"])
def test_continuation_logprob_matches_a_direct_computation(student):
    model, tok, seq2seq = load_student(student, seed=3)
    src, pre, cont = "Q: 2+2?\n", "two and two", "\n[ANSWER] 4"
    got = hf.continuation_logprob(model, tok, seq2seq, [src, src], [pre, pre], [cont, "\n[ANSWER] 5"])
    s, p, c = (tok(x, add_special_tokens=False)["input_ids"] for x in (src, pre, cont))
    with torch.no_grad():
        if seq2seq:
            enc = tok(src, return_tensors="pt")
            logits = model(**enc, labels=torch.tensor([p + c])).logits[0]
            lp = torch.log_softmax(logits, -1)[torch.arange(len(p), len(p) + len(c)), c]
        else:
            logits = model(input_ids=torch.tensor([s + p + c])).logits[0]
            start = len(s) + len(p)
            lp = torch.log_softmax(logits, -1)[torch.arange(start - 1, start - 1 + len(c)), c]
    assert got[0] == pytest.approx(lp.mean().item(), abs=1e-4) and got[0] != got[1]


def _gpt2(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256)).eval()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_shared_contexts_score_like_whole_sequences(arch):
    """Decoder-only scoring reads each question's context once and its options from the cache:
    questions with 1, 2 and 4 options, one-token and longer options, two questions sharing a
    context and a batch boundary inside a question all score as whole sequences do."""
    model, tok, _ = load_student("preset:tiny", seed=5)
    if arch == "gpt2":
        model = _gpt2(tok)
    rows = [("Q: 2+2?\n", "two and two", "\n[ANSWER] 4"), ("Q: 2+2?\n", "two and two", "\n[ANSWER] five"),
            ("Q: 2+2?\n", "two and two", "x"),
            ("Which?\n", "", "A"), ("Which?\n", "", "a longer option"), ("Which?\n", "", "B"), ("Which?\n", "", "C!"),
            ("Alone\n", "it wrote this", " end")]
    got = hf.continuation_logprob(model, tok, False, *zip(*rows), batch_size=3)
    want = []
    with torch.no_grad():
        for src, pre, cont in rows:
            s, p, c = (tok(x, add_special_tokens=False)["input_ids"] for x in (src, pre, cont))
            logits = model(input_ids=torch.tensor([s + p + c])).logits[0]
            start = len(s) + len(p)
            want.append(torch.log_softmax(logits, -1)[torch.arange(start - 1, start - 1 + len(c)), c].mean().item())
    assert got == pytest.approx(want, abs=1e-4)
    assert len(set(round(g, 6) for g in got)) == len(got)


def test_options_are_scored_and_the_best_one_taken():
    model, tok, seq2seq = load_student("preset:tiny", seed=1)
    m = get_method("cot_tuning")
    (out,) = m.predict(model, tok, seq2seq, [MC], max_new_tokens=8, batch_size=4)
    scores = out.extra["option_logprobs"]
    assert len(scores) == 2 and out.parsed.answer == "AB"[scores.index(max(scores))]
    (free,) = get_method("cot_tuning", {"score_options": False}).predict(model, tok, seq2seq, [MC], max_new_tokens=8,
                                                                         batch_size=4)
    assert "option_logprobs" not in free.extra


def test_free_form_questions_write_their_answer_after_the_marker(monkeypatch):
    """In a mixed batch, only questions with options stop at [ANSWER]: a yes/no or number question
    must still write its answer (it used to stop too, and every free-form task scored 0)."""
    yes_no = Example(id="q2", question="Is the sky blue?", answer="yes", kind="yes_no")
    number = Example(id="q3", question="2 + 3?", answer="5", kind="number")
    calls = []

    def fake_generate(model, tok, prompts, *, stop=(), **kw):
        calls.append((len(prompts), tuple(stop)))
        def reply(p):
            return "The sky is blue.\n[ANSWER] yes" if "sky" in p else "2 + 3 = 5.\n[ANSWER] 5"
        return [hf.Generated("Apples are red." if stop else reply(p), "stop", 3, 3, 0.0) for p in prompts]

    monkeypatch.setattr(hf, "generate", fake_generate)
    monkeypatch.setattr(hf, "continuation_logprob", lambda *a, **k: [-2.0, -1.0])
    outs = get_method("cot_tuning").predict(None, None, False, [MC, yes_no, number], max_new_tokens=8, batch_size=4)
    assert sorted(calls) == [(1, ("[ANSWER]",)), (2, ())]
    assert [o.parsed.answer for o in outs] == ["B", "yes", "5"]
    assert outs[0].extra["option_logprobs"] == [-2.0, -1.0] and outs[1].parsed.rationale == "The sky is blue."
