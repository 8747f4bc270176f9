"""Padding-free packing is exact: the packed row gives the padded batch's loss and gradients."""
import json
import math

import pytest
import torch

from cotdistill.config import TrainConfig
from cotdistill.errors import ConfigError
from cotdistill.methods.base import Pair
from cotdistill.students.data import Collator, encode_pairs
from cotdistill.students.packing import VARLEN, PackedCollator, can_pack, packed_attention
from cotdistill.students.presets import build_preset
from cotdistill.students.train import train_student, weighted_loss

PAIRS = [Pair(f"Q: what is {i} plus {i * 7}?\nA:", " Let's add. " * (1 + i % 4) + f"The answer is {8 * i}.",
              weight=1.0 + (i % 3)) for i in range(9)]


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tok, _ = build_preset("tiny")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=64, n_layer=2, n_head=4,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(cfg), tok


def llama_gqa():
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok, _ = build_preset("tiny")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, pad_token_id=tok.pad_token_id)
    return LlamaForCausalLM(cfg), tok


def bert_causal():
    """BERT as a decoder (pretrained:minilm-causal's architecture; random weights here)."""
    from transformers import BertConfig, BertLMHeadModel

    _, tok, _ = build_preset("tiny")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, is_decoder=True, pad_token_id=tok.pad_token_id)
    return BertLMHeadModel(cfg), tok


def preset_tiny():
    model, tok, _ = build_preset("tiny")
    return model, tok


@pytest.mark.parametrize("make", [preset_tiny, gpt2, llama_gqa, bert_causal],
                         ids=["llama", "gpt2", "llama-gqa", "bert-causal"])
def test_packed_loss_and_gradients_equal_the_padded_batch(make):
    model, tok = make()
    model.train()
    torch.manual_seed(1)
    model.config.attn_pdrop = model.config.resid_pdrop = model.config.embd_pdrop = 0.0
    model.eval()  # no dropout: the two forward passes must see the same network
    feats, skipped = encode_pairs(PAIRS, tok, False, 512)
    assert skipped == 0 and len({len(f["input_ids"]) for f in feats}) > 3  # uneven lengths: the padded batch pads

    padded = Collator(tok.pad_token_id)(feats)
    weights = padded.pop("weights")
    ref = model(**padded).loss
    ref.backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    packed = PackedCollator()(feats)
    assert packed["input_ids"].shape == (1, sum(len(f["input_ids"]) for f in feats))  # no pad token at all
    assert packed["position_ids"][0, : len(feats[0]["input_ids"]) + 1].tolist()[-1] == 0  # restarts per example
    with packed_attention(model):
        assert model.config._attn_implementation == VARLEN
        inputs = {k: v for k, v in packed.items() if k not in ("weights", "seq_idx")}
        got = model(**inputs).loss
        got.backward()
        w_packed, _ = weighted_loss(model, inputs, packed["weights"], packed["seq_idx"])
    assert model.config._attn_implementation == "sdpa"  # restored
    assert abs(got.item() - ref.item()) < 1e-5, (got.item(), ref.item())
    for p, g in zip(model.parameters(), ref_grads):
        assert torch.allclose(p.grad, g, atol=1e-5), (p.shape, (p.grad - g).abs().max())
    # per-example weights (step_by_step's pairs) survive packing
    w_padded, _ = weighted_loss(model, padded, weights)
    assert abs(w_packed.item() - w_padded.item()) < 1e-5 and abs(w_padded.item() - ref.item()) > 1e-4


def test_no_token_attends_across_examples():
    model, tok = preset_tiny()
    model.eval()
    feats, _ = encode_pairs(PAIRS[:3], tok, False, 512)
    alone = model(input_ids=torch.tensor([feats[1]["input_ids"]])).logits[0]
    packed = PackedCollator()(feats)
    with packed_attention(model):
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                       cu_seq_lens_q=packed["cu_seq_lens_q"], cu_seq_lens_k=packed["cu_seq_lens_k"],
                       max_length_q=packed["max_length_q"], max_length_k=packed["max_length_k"]).logits[0]
    s = len(feats[0]["input_ids"])
    assert torch.allclose(logits[s: s + len(feats[1]["input_ids"])], alone, atol=1e-5)


def _train(tmp_path, name, **kw):
    model, tok, seq2seq = build_preset("tiny", seed=0)
    cfg = TrainConfig(max_steps=6, batch_size=4, learning_rate=3e-3, warmup_steps=0, eval_every=3, **kw)
    res = train_student(model, tok, seq2seq, PAIRS, PAIRS[:3], cfg, tmp_path / name)
    return model, [h["loss"] for h in res.history if "loss" in h], res


def test_training_with_packing_follows_the_padded_run(tmp_path):
    model, packed, res = _train(tmp_path, "packed", packing=True)
    _, padded, res2 = _train(tmp_path, "padded", packing=False, group_by_length=False)
    assert len(packed) == len(padded) >= 3
    assert all(abs(a - b) < 1e-4 * max(1.0, abs(b)) for a, b in zip(packed, padded)), (packed, padded)
    assert abs(res.best_val_loss - res2.best_val_loss) < 1e-4
    assert model.config._attn_implementation == "sdpa"
    saved = json.loads((tmp_path / "packed" / "checkpoints" / "checkpoint-6" / "config.json").read_text())
    assert VARLEN not in json.dumps(saved)  # a saved student never names our attention function


def test_packing_is_refused_where_it_is_not_exact(tmp_path):
    t5, tok, seq2seq = build_preset("t5-tiny")
    assert not can_pack(t5, seq2seq) and can_pack(build_preset("tiny")[0], False)
    with pytest.raises(ConfigError, match="train.packing is on but T5ForConditionalGeneration"):
        train_student(t5, tok, seq2seq, PAIRS, [], TrainConfig(max_steps=1, packing=True), tmp_path / "t5")


def test_bf16_autocast_trains_on_the_cpu(tmp_path):
    _, bf16, _ = _train(tmp_path, "bf16", bf16=True)
    _, fp32, _ = _train(tmp_path, "fp32")
    assert all(math.isfinite(x) for x in bf16) and bf16[-1] < bf16[0]
    assert bf16 != fp32 and abs(bf16[-1] - fp32[-1]) < 0.05 * fp32[-1]  # autocast ran, and trains alike
