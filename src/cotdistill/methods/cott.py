"""CoTT: Chain-of-Thought Tuning for masked LMs (Fan et al., EMNLP 2023; METHODS.md §6).

Step I fills a [MASK] slot with the intermediate step (the coarse category, the undirected
relation); step II reads the same prompt with the slot filled in words and fills a second [MASK]
with the final label. The slot is convertible: training fills it with the gold intermediate, and
inference with the predicted one. Parts that can be switched off for ablations:
- counterfactual contrastive learning (`contrastive_weight`, 0 = off): step II is also run with a
  wrong intermediate in the slot, and a margin loss asks the gold label's log-probability to be at
  least `margin` higher with the right intermediate than with the wrong one, so the final
  prediction depends on step I;
- prediction rectification (`rectify`, false = off): P(y) = sum over the `top_k` most probable
  intermediates c of P_I(c) P_II(y | c), with P_II restricted to c's own labels (`consistent`),
  instead of taking step I's best guess and step II's best label over all labels.
Inputs: the task's text, relation entities marked `@ head @` and `# tail #`; a soft prompt of
`n_virtual_tokens` after [CLS]; labels scored by learned label embeddings (masked.py).
"""
from __future__ import annotations

import zlib
from typing import ClassVar

import torch
from pydantic import Field

from ..tasks.schema import Example
from .masked import MaskedMethod, MaskedModule, MaskedOptions, intermediate_of, wrong_intermediate


class CoTTOptions(MaskedOptions):
    contrastive_weight: float = Field(0.5, ge=0, description="weight of the counterfactual margin loss (0: off)")
    margin: float = Field(1.0, ge=0, description="log-probability margin of the counterfactual loss")
    rectify: bool = Field(True, description="combine P(intermediate) with P(label | intermediate) at inference")
    top_k: int = Field(3, ge=1, description="rectification: intermediates summed over")
    consistent: bool = Field(True, description="rectification: only labels under their intermediate")


class CoTT(MaskedMethod):
    name = "cott"
    paper = "Fan et al. 2023, Chain-of-Thought Tuning: Masked Language Models can also Think Step By Step"
    Options: ClassVar[type[CoTTOptions]] = CoTTOptions
    inference_options = frozenset({"rectify", "top_k", "consistent"})
    views = ("s1", "s2", "cf")
    heads = ("final", "inter")

    def features(self, ex: Example, index: int) -> dict:
        p, sp = self.prompts(ex), self.space
        gold = intermediate_of(ex, self.opts.separator)
        s1, pos1 = self.prompter.build(*self.fill(p["step1"], ex))
        s2, pos2 = self.prompter.build(*self.fill(p["step2"], ex, gold))
        cf_i = wrong_intermediate(sp, gold, zlib.crc32(ex.id.encode()))
        cf, pos3 = self.prompter.build(*self.fill(p["step2"], ex, sp.inters[cf_i]))
        return {"s1_ids": s1, "s1_pos": pos1, "s2_ids": s2, "s2_pos": pos2, "cf_ids": cf, "cf_pos": pos3,
                "labels": self.final_index(ex), "inter_labels": sp.inters.index(gold) if gold in sp.inters else -100}

    def loss(self, m: MaskedModule, b: dict) -> torch.Tensor:
        nll = torch.nn.functional.nll_loss
        lp1 = m.scores("inter", b["s1_ids"], b["s1_att"], b["s1_pos"])
        lp2 = m.scores("final", b["s2_ids"], b["s2_att"], b["s2_pos"])
        loss = nll(lp1, b["inter_labels"], ignore_index=-100) + nll(lp2, b["labels"], ignore_index=-100)
        w = self.opts.contrastive_weight
        if w > 0:
            lpc = m.scores("final", b["cf_ids"], b["cf_att"], b["cf_pos"])
            ok = b["labels"] >= 0
            y = b["labels"].clamp(min=0).unsqueeze(1)
            gap = lp2.gather(1, y).squeeze(1) - lpc.gather(1, y).squeeze(1)
            hinge = torch.relu(self.opts.margin - gap)
            loss = loss + w * (hinge * ok).sum() / ok.sum().clamp(min=1)
        return loss

    def classify(self, examples: list[Example]) -> list[tuple[str, dict]]:
        m, sp, o = self.module, self.space, self.opts
        rows = []
        for ex in examples:
            ids, pos = self.prompter.build(*self.fill(self.prompts(ex)["step1"], ex))
            rows.append({"s1_ids": ids, "s1_pos": pos})
        b = self.batch(rows)
        p1 = m.scores("inter", b["s1_ids"], b["s1_att"], b["s1_pos"]).exp()  # [B, n_inters]
        k = min(o.top_k, len(sp.inters)) if o.rectify else 1
        top_p, top_i = p1.topk(k, dim=1)
        children = sp.children()
        total = torch.zeros(len(examples), len(sp.finals), device=p1.device)
        for j in range(k):
            rows = []
            for ex, c in zip(examples, top_i[:, j].tolist()):
                ids, pos = self.prompter.build(*self.fill(self.prompts(ex)["step2"], ex, sp.inters[c]))
                rows.append({"s2_ids": ids, "s2_pos": pos})
            b = self.batch(rows)
            logits = m.heads["final"](m.at_mask(b["s2_ids"], b["s2_att"], b["s2_pos"]))
            if o.rectify and o.consistent:
                allowed = torch.full_like(logits, float("-inf"))
                for r, c in enumerate(top_i[:, j].tolist()):
                    allowed[r, children[c]] = 0.0
                logits = logits + allowed
            p2 = torch.softmax(logits, -1)
            total += (top_p[:, j:j + 1] if o.rectify else 1.0) * p2
        best = total.argmax(1).tolist()
        out = []
        for r, ex in enumerate(examples):
            inter = sp.inters[top_i[r, 0].item()]
            gold = intermediate_of(ex, o.separator) if ex.answer else None  # a served question has no gold
            out.append((sp.finals[best[r]], {"intermediate": inter, "gold_intermediate": gold,
                                             "p_intermediate": round(top_p[r, 0].item(), 4)}))
        return out
