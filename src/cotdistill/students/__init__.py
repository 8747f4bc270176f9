"""Students: loading (hub id, local path or from-scratch preset), training and generation."""
from __future__ import annotations

from .. import hf
from .presets import PRESETS, build_preset


def load_student(model: str, trust_remote_code: bool = False, seed: int = 0):
    """(model, tokenizer, is_seq2seq). `preset:NAME` builds a from-scratch student."""
    if model.startswith("preset:"):
        return build_preset(model.split(":", 1)[1], seed=seed)
    return hf.load_model(model, trust_remote_code=trust_remote_code)


__all__ = ["PRESETS", "build_preset", "load_student"]
