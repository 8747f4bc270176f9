"""Padding-free packing for decoder-only students.

A batch of examples becomes one row (transformers' DataCollatorWithFlattening): no pad tokens,
position ids restarting at every example, and the example boundaries (`cu_seq_lens_q`) passed
to attention. On a GPU with flash-attention those boundaries go to its varlen kernel; everywhere
else the attention function below runs causal SDPA on each example's slice, so no token attends
across examples and no compute is spent on a (tokens x tokens) block mask. The loss is the
model's own, over the same target tokens as the padded batch: packing is exact (tests pin it
to 1e-5), only faster.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

VARLEN = "cotdistill_sdpa_varlen"


def varlen_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                cu_seq_lens_q=None, **kwargs):
    """SDPA per packed example: query/key/value are (1, heads, tokens, dim); returns (1, tokens, heads, dim)
    like transformers' attention functions. Without boundaries (generation, an unpacked batch) it
    is transformers' SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    bounds = cu_seq_lens_q.tolist()
    out = torch.empty_like(query)
    p = dropout if module.training else 0.0
    for s, e in zip(bounds[:-1], bounds[1:]):
        out[:, :, s:e] = torch.nn.functional.scaled_dot_product_attention(
            query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=p, is_causal=True, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface

    if VARLEN not in AttentionInterface._global_mapping:
        AttentionInterface.register(VARLEN, varlen_sdpa)


def can_pack(model, seq2seq: bool) -> bool:
    """Packing is exact for decoder-only transformers models that take their attention function
    from transformers' registry (Llama, GPT-2, Qwen, ...) and pass position ids through."""
    return (not seq2seq and bool(getattr(model, "_supports_attention_backend", False))
            and hasattr(model, "set_attn_implementation") and not getattr(model.config, "is_encoder_decoder", False))


@contextlib.contextmanager
def packed_attention(model):
    """Train with the varlen attention; the model goes back to its own attention afterwards (and
    is never saved naming ours: transformers keeps the implementation out of config.json)."""
    _register()
    before = model.config._attn_implementation
    keep = before if before and before.startswith("flash_attention") else VARLEN  # flash is varlen already
    model.set_attn_implementation(keep)
    try:
        yield
    finally:
        model.set_attn_implementation(before)


@dataclass
class PackedCollator:
    """One row per batch: input ids, labels (the first token of every example ignored, as a padded
    batch never predicts it), position ids, example boundaries, the example of each token
    (`seq_idx`, for per-example loss weights) and the weights."""

    def __post_init__(self):
        from transformers import DataCollatorWithFlattening

        self.flatten = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_seq_idx=True)

    def __call__(self, batch: list[dict]) -> dict:
        out = self.flatten([{"input_ids": b["input_ids"], "labels": b["labels"]} for b in batch])
        out["weights"] = torch.tensor([b.get("weight", 1.0) for b in batch], dtype=torch.float)
        return out
