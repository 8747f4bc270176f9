"""Tokenise training pairs with the loss on the target only, and pad batches."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ModelError

IGNORE = -100


@dataclass(frozen=True)
class Pair:
    """One training sequence: the student reads `source` and learns `target` (loss on target only).
    `weight` scales this pair's loss (multi-task methods)."""

    source: str
    target: str
    weight: float = 1.0
    ends: bool = True  # the target ends the sequence (the end-of-sequence token follows it)


def encode_pairs(pairs: list[Pair], tok, seq2seq: bool, max_length: int) -> tuple[list[dict], int]:
    """Returns (features, number skipped as over-long). Over-long sequences are skipped, never
    silently truncated: a cut-off rationale would teach the student to stop mid-thought."""
    feats, skipped = [], 0
    eos = tok.eos_token_id
    if eos is None:  # hf.prepare_tokenizer gives every loaded student one; a hand-built tokenizer may lack it
        raise ModelError("the student's tokenizer has no end-of-sequence token: targets could not end; set "
                         "tokenizer.eos_token (for BERT-style tokenizers, its [SEP]) before training")
    for p in pairs:
        tgt = tok(p.target, add_special_tokens=False)["input_ids"] + ([eos] if p.ends else [])
        if seq2seq:
            src = tok(p.source, add_special_tokens=True)["input_ids"]
            if len(src) > max_length or len(tgt) > max_length:
                skipped += 1
                continue
            feats.append({"input_ids": src, "labels": tgt, "weight": p.weight})
        else:
            src = tok(p.source, add_special_tokens=False)["input_ids"]
            if len(src) + len(tgt) > max_length:
                skipped += 1
                continue
            feats.append({"input_ids": src + tgt, "labels": [IGNORE] * len(src) + tgt, "weight": p.weight})
    return feats, skipped


@dataclass
class Collator:
    pad_id: int

    def __call__(self, batch: list[dict]) -> dict:
        n = max(len(b["input_ids"]) for b in batch)
        m = max(len(b["labels"]) for b in batch)
        ids = torch.full((len(batch), n), self.pad_id, dtype=torch.long)
        att = torch.zeros((len(batch), n), dtype=torch.long)
        labels = torch.full((len(batch), m), IGNORE, dtype=torch.long)
        for i, b in enumerate(batch):
            ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
            att[i, : len(b["input_ids"])] = 1
            labels[i, : len(b["labels"])] = torch.tensor(b["labels"])
        return {"input_ids": ids, "attention_mask": att, "labels": labels,
                "weights": torch.tensor([b.get("weight", 1.0) for b in batch], dtype=torch.float)}
