"""One-step prompt tuning for masked LMs: one [MASK] for the final label, the same soft prompt,
verbalizer and label embeddings as CoTT (masked.py), no intermediate step. CoTT's baseline."""
from __future__ import annotations

import torch

from ..tasks.schema import Example
from .masked import MaskedMethod, MaskedModule


class PromptTuning(MaskedMethod):
    name = "prompt_tuning"
    paper = "one-step prompt tuning (the CoTT paper's baseline)"
    views = ("s",)
    heads = ("final",)

    def features(self, ex: Example, index: int) -> dict:
        ids, pos = self.prompter.build(*self.fill(self.prompts(ex)["one"], ex))
        return {"s_ids": ids, "s_pos": pos, "labels": self.final_index(ex)}

    def loss(self, m: MaskedModule, b: dict) -> torch.Tensor:
        return torch.nn.functional.nll_loss(m.scores("final", b["s_ids"], b["s_att"], b["s_pos"]), b["labels"],
                                            ignore_index=-100)

    def classify(self, examples: list[Example]) -> list[tuple[str, dict]]:
        b = self.batch([self.features(ex, 0) for ex in examples])
        best = self.module.scores("final", b["s_ids"], b["s_att"], b["s_pos"]).argmax(1).tolist()
        return [(self.space.finals[i], {}) for i in best]
