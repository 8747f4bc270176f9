import pytest

from cotdistill.curate import curate, teacher_answer
from cotdistill.evaluate import summarize, wilson_interval


def rec(id_, rationale, answer_text, gold="12", kind="number", finish="stop", sample=0):
    return {"id": id_, "sample": sample, "question": "q", "answer": gold, "kind": kind, "choices": None,
            "rationale": rationale, "answer_text": answer_text, "finish_reason": finish}


def test_curation_keeps_correct_and_counts_every_drop():
    recs = [
        rec("a", "3 * 4 = 12.", " 12."),  # kept
        rec("a", "3 * 4 = 12.", " 12.", sample=1),  # duplicate rationale of the same question
        rec("b", "3 * 4 = 13.", " 13."),  # wrong
        rec("c", "I am thinking", " twelve", finish="length"),  # no answer anywhere
        rec("d", "3 * 4 = 12 and then", " 12.", finish="length"),  # right but truncated
        rec("e", "", " 12."),  # empty rationale
        rec("f", "so 12 it is", " about it."),  # stage 2 has no number: falls back to the rationale
    ]
    kept, st = curate(recs)
    assert [r["id"] for r in kept] == ["a", "f"]
    assert st.dropped == {"duplicate": 1, "wrong_answer": 1, "no_answer_found": 1, "truncated": 1, "empty_rationale": 1}
    assert st.samples == 7 and st.kept + sum(st.dropped.values()) == st.samples  # nothing silently lost
    assert st.as_dict()["questions_with_a_kept_rationale"] == 2
    kept, st = curate(recs, dedupe=False, keep_truncated=True)
    assert {r["id"] for r in kept} == {"a", "d", "f"} and len(kept) == 4


def test_teacher_answer_sources():
    r = rec("a", "first 3 then 12", " 5.")
    assert teacher_answer(r) == "5" and teacher_answer(r, "rationale") == "12"


@pytest.mark.parametrize("k,n,lo,hi", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962)])
def test_wilson_interval(k, n, lo, hi):
    a, b = wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=1e-3) and b == pytest.approx(hi, abs=1e-3)


def test_summarize():
    preds = [{"correct": c, "prediction": p, "generated_tokens": 4, "finish_reason": f, "seconds": 0.01}
             for c, p, f in [(True, "1", "stop"), (False, None, "length")]]
    s = summarize(preds)
    assert s["accuracy"] == 50.0 and s["no_answer"] == 1 and s["truncated"] == 1 and s["mean_generated_tokens"] == 4


def test_hedging_teacher_is_an_abstention_not_a_no():
    recs = [
        rec("a", "Some say yes, some say no.", " There is no definitive answer to this question.", gold="no",
            kind="yes_no"),
        rec("b", "It depends on who you ask.", " unclear", gold="no", kind="yes_no"),
        rec("c", "Whitney flips it, so it is tails up. So the answer is no.", " No.", gold="no", kind="yes_no"),
        rec("d", "There is no way to know", " 2 possible answers: 3 or 4", gold="3"),
    ]
    kept, st = curate(recs)
    assert [r["id"] for r in kept] == ["c"]
    assert st.dropped == {"abstained": 3}
    assert teacher_answer(recs[0]) is None and teacher_answer(recs[2]) == "no"


def test_evaluation_counts_abstentions():
    preds = [{"correct": False, "prediction": None, "abstained": True, "generated_tokens": 5, "finish_reason": "stop",
              "seconds": 0.1},
             {"correct": True, "prediction": "no", "abstained": False, "generated_tokens": 5, "finish_reason": "stop",
              "seconds": 0.1}]
    m = summarize(preds)
    assert m["abstained"] == 1 and m["no_answer"] == 1 and m["accuracy"] == 50.0


def test_questions_over_the_input_limit_are_counted_and_scored_wrong(caplog):
    from cotdistill.evaluate import predict
    from cotdistill.methods import get_method
    from cotdistill.students.presets import build_preset
    from cotdistill.tasks.schema import Example

    model, tok, seq2seq = build_preset("tiny")
    tok.model_max_length = 40  # byte-level: 40 characters
    exs = [Example(id="s", question="2 + 3?", answer="5", kind="number"),
           Example(id="l", question="A very long story. " * 5 + "2 + 3?", answer="5", kind="number")]
    with caplog.at_level("WARNING", logger="cotdistill.evaluate"):
        recs = predict(get_method("ft_cot"), model, tok, seq2seq, exs, max_new_tokens=4, batch_size=2)
    assert [r["id"] for r in recs] == ["s", "l"]  # every question keeps its place
    assert recs[1]["finish_reason"] == "too_long" and recs[1]["prediction"] is None and not recs[1]["correct"]
    assert recs[0]["finish_reason"] != "too_long" and recs[0]["generated_tokens"] > 0
    assert "1 of 2 questions are longer than the student's input limit (40 tokens)" in caplog.text
    s = summarize(recs)
    assert s["too_long"] == 1 and s["no_answer"] >= 1 and s["n"] == 2


def test_generate_raises_on_a_prompt_over_the_limit_or_marks_it_and_answers_the_rest():
    from cotdistill import hf
    from cotdistill.errors import ModelError
    from cotdistill.students.presets import build_preset

    model, tok, seq2seq = build_preset("tiny")
    prompts = ["2 + 3?", "A very long story. " * 5, "4 + 4?"]
    with pytest.raises(ModelError, match="prompt 1 has 95 tokens, over the model's input limit of 40"):
        hf.generate(model, tok, prompts, seq2seq=seq2seq, max_new_tokens=3, max_input_tokens=40)
    seen = []
    gens = hf.generate(model, tok, prompts, seq2seq=seq2seq, max_new_tokens=3, max_input_tokens=40,
                       too_long="mark", progress=seen.append)
    assert [g.finish_reason == hf.TOO_LONG for g in gens] == [False, True, False]
    assert gens[1].text == "" and gens[1].completion_tokens == 0 and gens[1].prompt_tokens == 95
    assert gens[0].completion_tokens > 0 and gens[2].completion_tokens > 0 and sum(seen) == 3
    with pytest.raises(ValueError, match="too_long must be"):
        hf.generate(model, tok, prompts, seq2seq=seq2seq, too_long="skip")
