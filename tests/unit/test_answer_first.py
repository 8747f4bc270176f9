"""The stop rule inside generation, and the perception module of adaptive thinking: fitting,
routing, saving and loading it, and how routes are labelled."""
import pytest
import torch

from cotdistill import hf
from cotdistill.errors import ModelError
from cotdistill.methods import get_method
from cotdistill.methods.base import Output, Parsed
from cotdistill.methods.perception import Perception
from cotdistill.students.presets import build_preset
from cotdistill.tasks.synthetic import make_synthetic


@pytest.fixture(scope="module", params=["tiny", "t5-tiny"])
def student(request):
    torch.manual_seed(0)
    return build_preset(request.param, seed=0)


def _count_forwards(model):
    calls = []
    target = model.get_decoder() if model.config.is_encoder_decoder else model
    handle = target.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def test_stop_rule_ends_generation_inside_the_decoding_loop(student):
    model, tok, seq2seq = student
    prompts = ["What is 3 + 4? ###", "Name a colour ###"]
    free = hf.generate(model, tok, prompts, seq2seq=seq2seq, max_new_tokens=24)
    assert all(g.completion_tokens == 24 and g.finish_reason == "length" for g in free)
    stop = free[0].text[:2]  # whatever this random model writes first
    calls, handle = _count_forwards(model)
    try:
        got = hf.generate(model, tok, prompts[:1], seq2seq=seq2seq, max_new_tokens=24, stop=(stop,))
    finally:
        handle.remove()
    n = len(stop.encode())  # byte-level tokenizer: one token per byte
    assert got[0].finish_reason == "stop" and got[0].text == "" and got[0].completion_tokens == n
    assert len(calls) <= n + 1  # the model ran for the stop string's tokens, not for 24 (post-hoc truncation)


def _two_formats(n, seed):
    a = make_synthetic("multiplication").generate(n, seed=seed)
    b = make_synthetic("last_letters", {"n_words": 2}).generate(n, seed=seed)
    return a, b


def test_perception_learns_routes_saves_and_loads(student, tmp_path):
    model, tok, seq2seq = student
    before = [p.clone() for p in model.parameters()]
    a, b = _two_formats(40, 0)
    qs = [e.question for e in a + b]
    labels = [0] * len(a) + [1] * len(b)  # multiplication -> pre, last letters -> post
    mod = Perception.for_student(model, n_virtual_tokens=4, head_hidden=16)
    fit = mod.fit(model, tok, seq2seq, qs, labels, steps=60, lr=1e-2, batch_size=16)
    assert fit["train_accuracy"] == 100.0
    assert all(torch.equal(x, y) for x, y in zip(before, model.parameters()))  # the student stayed frozen
    assert all(p.requires_grad for p in model.parameters())  # and is trainable again afterwards
    ta, tb = _two_formats(20, 7)  # questions it never saw
    p_new = mod.p_post(model, tok, seq2seq, [e.question for e in ta + tb])
    assert all(p < 0.5 for p in p_new[:20]) and all(p >= 0.5 for p in p_new[20:])
    mod.save(tmp_path / "perception", {"note": "test"})
    again = Perception.load(tmp_path / "perception")
    assert again.config["n_virtual_tokens"] == 4
    assert again.p_post(model, tok, seq2seq, [e.question for e in ta + tb]) == pytest.approx(p_new, abs=1e-6)
    with pytest.raises(ModelError, match="no perception module here"):
        Perception.load(tmp_path / "nowhere")


def test_adaptive_routes_each_question_and_records_it(student, tmp_path):
    model, tok, seq2seq = student
    a, b = _two_formats(30, 0)
    mod = Perception.for_student(model, n_virtual_tokens=4, head_hidden=16)
    mod.fit(model, tok, seq2seq, [e.question for e in a + b], [0] * 30 + [1] * 30, steps=60, lr=1e-2, batch_size=16)
    mod.save(tmp_path / "perception")
    method = get_method("adaptive")
    method = method.load_extras(tmp_path, model)
    ta, tb = _two_formats(5, 9)
    outs = method.predict(model, tok, seq2seq, ta + tb, max_new_tokens=6, batch_size=8)
    assert [o.extra["mode"] for o in outs] == ["pre"] * 5 + ["post"] * 5
    assert all(0 <= o.extra["p_post"] <= 1 and o.seconds > 0 for o in outs)
    assert all(o.generated.completion_tokens <= 6 for o in outs)
    forced = get_method("adaptive", {"mode": "pre"})  # a forced mode needs no perception module
    assert {o.extra["mode"] for o in forced.predict(model, tok, seq2seq, tb, max_new_tokens=4, batch_size=8)} == {"pre"}
    with pytest.raises(ModelError, match="no perception module"):
        get_method("adaptive").predict(model, tok, seq2seq, tb, max_new_tokens=4, batch_size=8)
    # A router that failed its check: every question goes to the recorded mode, unless the check is off.
    mod.save(tmp_path / "perception", {"check": {"fixed_mode": "pre"}})
    checked = get_method("adaptive").load_extras(tmp_path, model)
    assert {o.extra["mode"] for o in checked.predict(model, tok, seq2seq, tb, max_new_tokens=4, batch_size=8)} == {"pre"}
    unchecked = get_method("adaptive", {"router_check": False}).load_extras(tmp_path, model)
    assert [o.extra["mode"] for o in unchecked.predict(model, tok, seq2seq, ta + tb, max_new_tokens=4,
                                                       batch_size=8)] == ["pre"] * 5 + ["post"] * 5


def _recs(pre, post):
    return [{"pre_correct": a, "post_correct": b} for a, b in zip(pre, post)]


def test_router_check_falls_back_to_a_single_mode_only_when_it_answers_more():
    from cotdistill.methods.adaptive import router_check

    # Post right only by luck (half the time), pre almost always: routes from coin-toss labels lose to pre.
    recs = _recs([1, 1, 1, 1, 1, 1, 1, 0], [1, 0, 1, 0, 0, 1, 0, 1])
    noisy = router_check(recs, [0.9, 0.9, 0.2, 0.8, 0.1, 0.7, 0.6, 0.9], 0.5)
    assert noisy["routed_accuracy"] == 62.5 and noisy["pre_accuracy"] == 87.5 and noisy["fixed_mode"] == "pre"
    assert noisy["routed_to_post"] == 0.75
    # Routes that pick each question's right mode beat both single modes: the router stays.
    mixed = _recs([1, 1, 0, 0], [0, 0, 1, 1])
    assert router_check(mixed, [0.1, 0.2, 0.9, 0.8], 0.5)["fixed_mode"] is None
    # A tie between the routes and the best mode keeps the router; a tie between modes favours post.
    assert router_check(_recs([1, 0], [0, 1]), [0.1, 0.1], 0.5)["fixed_mode"] is None
    assert router_check(_recs([1, 0], [0, 1]), [0.9, 0.1], 0.5)["fixed_mode"] == "post"


@pytest.mark.parametrize("neither,expected", [("skip", ["post", "pre", "post", None]),
                                              ("pre", ["post", "pre", "post", "pre"])])
def test_route_labels_prefer_post_when_both_modes_are_right(monkeypatch, neither, expected):
    exs = make_synthetic("multiplication").generate(4)
    right = {"pre": [True, True, False, False], "post": [True, False, True, False]}
    method = get_method("adaptive", {"neither": neither})

    def fake(mode, model, tok, seq2seq, examples, **kw):
        g = hf.Generated("", "stop", 1, 3 if mode == "post" else 30, 0.0)
        return [Output(g, Parsed(e.answer if ok else "-1", None)) for e, ok in zip(examples, right[mode])]

    monkeypatch.setattr(method, "predict_mode", fake)
    recs = method.label_routes(None, None, False, exs, max_new_tokens=8, batch_size=4)
    assert [r["label"] for r in recs] == expected
    assert recs[0]["pre_tokens"] == 30 and recs[0]["post_tokens"] == 3


def test_perception_steps_are_capped_by_passes_over_the_labels():
    m = get_method("adaptive")  # 300 steps, 20 epochs, batch 32
    assert m.perception_steps(105) == 66  # ceil(20 * 105 / 32): a small labelled set
    assert m.perception_steps(900) == 300  # the step cap: synthetic sets keep their 300
    assert m.perception_steps(1) == 1
    assert get_method("adaptive", {"perception_epochs": 1, "perception_batch_size": 10}).perception_steps(25) == 3
