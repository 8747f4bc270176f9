"""AS-ES methods end to end on a synthetic task in seconds, their iterative decoding and bad input."""
import json
import shutil
from types import SimpleNamespace

import pytest

from cotdistill.config import load_config
from cotdistill.errors import ModelError
from cotdistill.methods import get_method
from cotdistill.pipeline import Run
from cotdistill.tasks.schema import Example


def cfg(tmp_path, methods, *extra):
    return load_config(None, [f"out={tmp_path / 'run'}", "task.name=word_problems", "task.n_train=120",
                              "task.n_test=12", "train.max_steps=20", "train.batch_size=16", "train.eval_every=10",
                              f"methods=[{', '.join(methods)}]", *extra])


def test_as_es_and_dual_train_decode_and_record_segments(tmp_path):
    s = Run(cfg(tmp_path, ["as_es", "as_es_dual"], "method_options={as_es: {max_segments: 3}, as_es_dual: "
                                                   "{max_segments: 3}}")).run_all()
    for m in ("as_es", "as_es_dual"):
        r = s["methods"][m]
        assert r["steps"] == 20 and r["n"] == 12
        preds = [json.loads(l) for l in (tmp_path / "run" / m / "predictions.jsonl").read_text().splitlines()]
        for p in preds:
            assert {"segments", "segment_steps", "reached_answer"} <= p.keys()
            assert 1 <= p["segment_steps"] <= 3  # the step limit holds
            assert p["reached_answer"] or (p["finish_reason"] == "length" and p["prediction"] is None)
            assert all(k in ("ES", "AS") for k, _ in p["segments"])
        info = json.loads((tmp_path / "run" / m / "train_info.json").read_text())
        assert info["segments"]["as_segments"] > 0  # counted per kind
    # preset:tiny is decoder-only: as_es learns each kept rationale as one sequence, as_es_dual a
    # pair per segment plus the answer step
    pairs = {m: json.loads((tmp_path / "run" / m / "train_info.json").read_text())["train_pairs"]
             for m in ("as_es", "as_es_dual")}
    assert pairs["as_es"] == 108 and pairs["as_es_dual"] > 108 * 2
    # as_es logs the validation loss of each kind of step at every evaluation (steps 10 and 20)
    log = [json.loads(l) for l in (tmp_path / "run/as_es/train_log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert all({"eval_loss_ES", "eval_loss_AS", "eval_loss_answer"} <= r.keys() for r in evals)
    assert evals[1]["eval_loss_ES"] < evals[0]["eval_loss_ES"]  # the student learns
    assert (tmp_path / "run/as_es_dual/model/as_student/config.json").exists()


def test_pairs_carry_the_kind_and_end_with_the_answer():
    ex = Example(id="1", question="Tom has 3 apples and 2 pears. How many fruits?", answer="5", kind="number")
    r = "Tom has 3 apples. He has 2 pears. 3 + 2 = 5."
    pairs = get_method("as_es", {"pack": False}).train_pairs(ex, [r], seq2seq=False)
    assert [p.target for p in pairs] == [" ES: Tom has 3 apples.", " ES: He has 2 pears.", " AS: 3 + 2 = 5.", " --> 5"]
    assert pairs[2].source == f"{ex.question} ### Tom has 3 apples. He has 2 pears."
    assert len(get_method("as_es").train_pairs(ex, [r], seq2seq=True)) == 4  # encoder-decoder: never packed
    grouped = get_method("as_es")
    groups = grouped.loss_groups(ex, [r, "   "], seq2seq=False)
    assert [g for g, _ in groups] == ["ES", "ES", "AS", "answer"]
    dual = get_method("as_es_dual").turns(ex, [r], seq2seq=True)
    assert [(k, p.target) for k, p in dual] == [("ES", "Tom has 3 apples. [ES]"), ("ES", "He has 2 pears. [AS]"),
                                                ("AS", "3 + 2 = 5. [AS]"), ("AS", "--> 5")]
    opens_abstract = get_method("as_es_dual").turns(ex, ["3 + 2 = 5."], seq2seq=True)
    assert opens_abstract[0] == ("ES", opens_abstract[0][1]) and opens_abstract[0][1].target == "[AS]"  # hand-over
    m = get_method("as_es")
    assert m.train_pairs(ex, ["   "], seq2seq=False) == []
    # counted over the questions a student trains on, once however often their pairs are built
    counts = m.segment_counts([ex, ex.model_copy(update={"id": "2"})], {"1": [r, "   "], "2": [r]})
    assert counts == {"es_segments": 4, "as_segments": 2, "rationales_without_segments": 1}


def test_packed_as_es_is_its_steps_in_one_sequence():
    """Decoder-only as_es trains one row per rationale; its tokens are, exactly, every step's
    context followed by that step's target, so the row's loss is the loss of all its steps."""
    from cotdistill.students import load_student
    from cotdistill.students.data import IGNORE, encode_pairs

    ex = Example(id="1", question="Tom has 3 apples and 2 pears. How many fruits?", answer="5", kind="number")
    r = "Tom has 3 apples. He has 2 pears. 3 + 2 = 5."
    m = get_method("as_es")
    [row] = m.train_pairs(ex, [r], seq2seq=False)
    assert row.source == f"{ex.question} ###"
    assert row.target == " ES: Tom has 3 apples. | ES: He has 2 pears. | AS: 3 + 2 = 5. | --> 5"
    steps = m.steps(ex, [r], seq2seq=False)
    assert [k for k, _ in steps] == ["ES", "ES", "AS", "AS"]
    _, tok, _ = load_student("preset:tiny")
    [packed], _ = encode_pairs([row], tok, False, 512)
    at = None
    for k, (_, p) in enumerate(steps):
        [f], _ = encode_pairs([p], tok, False, 512)
        n = len(f["input_ids"])  # inside the row a step ends with ` |`: only the answer step ends with EOS
        assert (f["input_ids"][-1] == tok.eos_token_id) == (k == len(steps) - 1)
        context = f["labels"].count(IGNORE)
        assert f["input_ids"][:n] == packed["input_ids"][:n]
        assert packed["labels"][context:n] == f["labels"][context:n]  # the step's target, trained in the row
        assert context == at if at is not None else packed["labels"][:context] == [IGNORE] * context
        at = n
    assert at == len(packed["input_ids"])


def test_group_losses_are_the_loss_per_target_token_of_each_group():
    """The logged loss of a group equals the model's own loss over all the group's target tokens."""
    import torch

    from cotdistill.methods.base import Pair
    from cotdistill.students import load_student
    from cotdistill.students.data import Collator, encode_pairs
    from cotdistill.students.train import GroupLosses

    model, tok, _ = load_student("preset:tiny", seed=0)
    a = [Pair("Tom has 3 apples ###", " ES: Tom has 3 apples. |", ends=False), Pair("x ###", " --> 5")]
    b = [Pair("Ann has 2 pens ###", " AS: 2 + 1 = 3.")]
    enc = {name: encode_pairs(pairs, tok, False, 512)[0] for name, pairs in {"a": a, "b": b}.items()}
    got = GroupLosses(enc, Collator(tok.pad_token_id), batch_size=1).losses(model)
    with torch.no_grad():
        [f] = enc["b"]
        want_b = model(input_ids=torch.tensor([f["input_ids"]]), labels=torch.tensor([f["labels"]])).loss.item()
        total = n = 0.0
        for f in enc["a"]:  # pooled over tokens: each pair weighs by its number of target tokens
            k = sum(t != -100 for t in f["labels"][1:])
            total += model(input_ids=torch.tensor([f["input_ids"]]), labels=torch.tensor([f["labels"]])).loss.item() * k
            n += k
    assert got["eval_loss_b"] == pytest.approx(want_b, abs=1e-4)
    assert got["eval_loss_a"] == pytest.approx(total / n, abs=1e-4)
    assert enc["a"][0]["input_ids"][-1] != tok.eos_token_id and enc["a"][1]["input_ids"][-1] == tok.eos_token_id


def test_packed_decoding_writes_one_segment_per_step_and_shows_the_kinds(monkeypatch):
    from cotdistill import hf

    q = Example(id="a", question="Ann has 2 pens. How many pens?", answer="2", kind="number")
    seen = []

    def fake_generate(model, tok, prompts, **kw):
        seen.append((prompts[0], kw["stop"]))
        step = prompts[0].count("|")
        return [hf.Generated(["ES: Ann has 2 pens.", "AS: 2 in all.", "--> 2"][step], "stop", 5, 4, 0.0)]

    monkeypatch.setattr(hf, "generate", fake_generate)
    monkeypatch.setattr(hf, "input_limit", lambda model, tok: 512)
    [out] = get_method("as_es").predict(None, None, False, [q], max_new_tokens=8, batch_size=4)
    assert [s for s, _ in seen] == [f"{q.question} ###", f"{q.question} ### ES: Ann has 2 pens. |",
                                    f"{q.question} ### ES: Ann has 2 pens. | AS: 2 in all. |"]
    assert {stop for _, stop in seen} == {("|",)}
    assert out.extra["segments"] == [["ES", "Ann has 2 pens."], ["AS", "2 in all."]] and out.parsed.answer == "2"


def test_dual_folder_missing_its_as_student_fails_clearly(tmp_path):
    c = cfg(tmp_path, ["as_es_dual"], "train.max_steps=2")
    run = Run(c)
    train, test, curated = run.prepare()
    run.train("as_es_dual", train, curated)
    shutil.rmtree(tmp_path / "run/as_es_dual/model/as_student")
    with pytest.raises(ModelError, match="needs both of its models; the AS student .* is missing"):
        run.evaluate("as_es_dual", test)


def test_overlong_segments_are_skipped_and_counted(tmp_path):
    s = Run(cfg(tmp_path, ["as_es"], "train.max_length=230", "train.max_steps=2")).run_all()
    info = json.loads((tmp_path / "run/as_es/train_info.json").read_text())
    assert info["skipped_overlong"] > 0 and s["methods"]["as_es"]["steps"] == 2


def test_step_limit_holds_when_turns_pass_between_the_two_students(monkeypatch):
    """A question handed to the other student within a step waits for the next step: with mixed
    turns in one batch it used to be decoded twice in a step, past `max_segments`."""
    from cotdistill import hf

    es_model, as_model = SimpleNamespace(config=SimpleNamespace()), SimpleNamespace(config=SimpleNamespace())
    qa = Example(id="a", question="Ann has 2 pens. How many pens?", answer="2", kind="number")
    qb = Example(id="b", question="Bob has 3 cups. How many cups?", answer="3", kind="number")

    def fake_generate(model, tok, prompts, **kw):
        def reply(p):
            if p.startswith("Ann"):
                return "Ann has 2 pens. [ES]"  # stays with the ES student
            return "Bob has 3 cups. [AS]" if model is es_model else "3 cups in all. [ES]"  # hands over every time
        return [hf.Generated(reply(p), "stop", 5, 4, 0.0) for p in prompts]

    monkeypatch.setattr(hf, "generate", fake_generate)
    m = get_method("as_es_dual", {"max_segments": 3})
    m.as_model = as_model
    outs = m.predict(es_model, None, True, [qa, qb], max_new_tokens=8, batch_size=4)
    assert [o.extra["segment_steps"] for o in outs] == [3, 3]
    assert [k for k, _ in outs[1].extra["segments"]] == ["ES", "AS", "ES"]
    assert all(not o.extra["reached_answer"] for o in outs)


def test_a_context_that_outgrows_the_input_limit_stops_that_question_only(monkeypatch, caplog):
    """Each step appends a segment to the context: a question whose context no longer fits the
    student stops unanswered and is counted, and the batch goes on (it used to fail the whole
    evaluation: a GSM8K question plus its segments passed MiniLM's 512 positions)."""
    from cotdistill import hf

    class Tok:  # one token per word, 12 at most
        model_max_length = 12

        def __call__(self, text, **kw):
            return {"input_ids": text.split()}

    short = Example(id="s", question="Ann has 2 pens. How many?", answer="2", kind="number")
    wordy = Example(id="w", question="Bob has 3 cups and 4 more cups. How many?", answer="7", kind="number")

    def fake_generate(model, tok, prompts, **kw):  # hf.generate's contract: over the limit -> marked, not generated
        assert kw["too_long"] == "mark" and kw["max_input_tokens"] == 12
        return [hf.Generated("", hf.TOO_LONG, 15, 0, 0.0) if len(tok(p)["input_ids"]) > 12 else
                hf.Generated("--> 2" if p.startswith("Ann") and "ES:" not in p and "pens." in p.split("###")[-1]
                             else "ES: pens are pens.", "stop", 5, 4, 0.0) for p in prompts]

    monkeypatch.setattr(hf, "generate", fake_generate)
    m = get_method("as_es", {"max_segments": 4})
    with caplog.at_level("WARNING"):
        outs = m.predict(SimpleNamespace(config=SimpleNamespace()), Tok(), True, [short, wordy], max_new_tokens=8,
                         batch_size=4)
    assert outs[0].extra["reached_answer"] and not outs[0].extra["context_full"] and outs[0].parsed.answer == "2"
    assert outs[1].extra["context_full"] and not outs[1].extra["reached_answer"] and outs[1].parsed.answer is None
    assert outs[1].extra["segment_steps"] == 1  # its first context fit, the second (12 + 3 words) did not
    assert "1 of 2 questions stopped before their answer step" in caplog.text
