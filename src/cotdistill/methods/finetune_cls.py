"""Fine-tuning with a classification head: a linear layer on the encoder's [CLS] state over the
final labels, the whole student trained. The conventional baseline of CoTT (no prompt, no
verbalizer, no intermediate step)."""
from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from ..tasks.schema import Example
from .masked import MaskedMethod, MaskedModule, MaskedOptions, marked_text


class FinetuneOptions(MaskedOptions):
    n_virtual_tokens: int = Field(0, ge=0, description="soft-prompt vectors (none by default: a plain head)")


class FinetuneCls(MaskedMethod):
    name = "finetune_cls"
    paper = "fine-tuning with a classification head on [CLS] (the CoTT paper's baseline)"
    Options: ClassVar[type[FinetuneOptions]] = FinetuneOptions
    views = ("x",)
    heads = ()

    def _module(self, model, tok) -> MaskedModule:
        head = nn.Sequential(nn.Dropout(model.config.hidden_dropout_prob),
                             nn.Linear(model.config.hidden_size, len(self.space.finals)))
        return MaskedModule(model, {}, self.opts.n_virtual_tokens, classifier=head)

    def features(self, ex: Example, index: int) -> dict:
        ids, _ = self.prompter.build(marked_text(ex)[0], None)
        return {"x_ids": ids, "labels": self.final_index(ex)}

    def loss(self, m: MaskedModule, b: dict) -> torch.Tensor:
        return torch.nn.functional.nll_loss(m.cls_scores(b["x_ids"], b["x_att"]), b["labels"], ignore_index=-100)

    def classify(self, examples: list[Example]) -> list[tuple[str, dict]]:
        b = self.batch([self.features(ex, 0) for ex in examples])
        best = self.module.cls_scores(b["x_ids"], b["x_att"]).argmax(1).tolist()
        return [(self.space.finals[i], {}) for i in best]
