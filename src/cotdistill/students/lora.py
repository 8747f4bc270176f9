"""LoRA adapters through peft (`student.lora`): only low-rank updates of the attention (and any
named) projections train; the student is saved merged, so it loads by path like any model and
the next run (continual tuning, evaluation, serving) needs no peft at all."""
from __future__ import annotations

import logging

from ..errors import ConfigError

log = logging.getLogger(__name__)

# Attention projections by architecture family (peft's own defaults miss some of ours, e.g.
# BERT2BERT's cross-attention, and the from-scratch presets).
_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value", "c_attn", "q", "k", "v", "o")


def add_lora(model, cfg):
    """`model` wrapped with fresh LoRA adapters (peft), the base weights frozen."""
    from peft import LoraConfig, TaskType, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = list(cfg.target_modules) if cfg.target_modules else [t for t in _TARGETS if t in names]
    missing = [t for t in targets if t not in names]
    if not targets or missing:
        raise ConfigError(f"`student.lora.target_modules`: {missing or 'no attention projection found'} not in "
                          f"{type(model).__name__}; name its linear layers, e.g. {sorted(names)[:12]}")
    seq2seq = getattr(model.config, "is_encoder_decoder", False)
    lcfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                      task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM)
    wrapped = get_peft_model(model, lcfg)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    total = sum(p.numel() for p in wrapped.parameters())
    log.info("LoRA r=%d on %s: %d of %d parameters train", cfg.r, targets, trainable, total)
    return wrapped


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def merged(model):
    """The plain model with the adapters folded into its weights (what is saved)."""
    return model.merge_and_unload() if is_lora(model) else model
