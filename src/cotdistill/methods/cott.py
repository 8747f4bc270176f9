"""CoTT: Chain-of-Thought Tuning for masked LMs (Fan et al., EMNLP 2023; METHODS.md §6).

Step I fills a [MASK] slot with the intermediate step (the coarse category, the undirected
relation); step II reads the same prompt with the slot filled in words and fills a second [MASK]
with the final label. The slot is convertible: training fills it with the gold intermediate, and
inference with the predicted one. With `joint_step1` (default) step I reads step II's very prompt
with the slot still masked, and so also predicts the label there, before any intermediate is
written: the one-step prediction, which carries its own idea of the intermediate (the parent of
each label). Parts that can be switched off for ablations:
- counterfactual contrastive learning (`contrastive_weight`, 0 = off): step II is also run with a
  wrong intermediate in the slot, and a margin loss asks the gold label's log-probability to be at
  least `margin` higher with the right intermediate than with the wrong one, so the final
  prediction depends on step I;
- prediction rectification (`rectify`, false = off; see `rectified`): step I's intermediate is
  rectified with the intermediate that step I's label prediction implies, then
  P(y) = sum over the `top_k` most probable intermediates c of P(c) P(y | c), with P(y | c) from
  step II (and step I's label prediction, renormalised to c's labels) restricted to c's own labels
  (`consistent`); off: step I's best guess, then step II's best label over all labels.
Why rectify with the label prediction: measured on 20 Newsgroups and SemEval (README), a
wrong step-I intermediate was almost never recovered from, while the one-step label prediction's
parent was right about as often as step I itself, and not always on the same questions.
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
    joint_step1: bool = Field(True, description="step I reads step II's prompt with the slot masked and also predicts "
                                                "the label (used by rectification); false: an intermediate-only prompt")
    step2_weight: float = Field(1.0, ge=0, description="weight of step II's terms (its label NLL and the "
                                "counterfactual margin) against step I's")
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

    def step1_prompt(self, ex: Example) -> str:
        p = self.prompts(ex)
        return p["step2"].replace("{inter}", "{mask}") if self.opts.joint_step1 else p["step1"]

    def step1_features(self, ex: Example) -> dict:
        s1, slots = self.prompter.build_slots(*self.fill(self.step1_prompt(ex), ex))
        return {"s1_ids": s1, "s1_pos": slots[0], **({"s1_ypos": slots[1]} if self.opts.joint_step1 else {})}

    def step1_scores(self, m: MaskedModule, b: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probabilities of the intermediates and (joint step I) of the labels, from one pass."""
        if not self.opts.joint_step1:
            return m.scores("inter", b["s1_ids"], b["s1_att"], b["s1_pos"]), None
        lp_i, lp_y = m.scores_at(b["s1_ids"], b["s1_att"], ("inter", b["s1_pos"]), ("final", b["s1_ypos"]))
        return lp_i, lp_y

    def features(self, ex: Example, index: int) -> dict:
        p, sp = self.prompts(ex), self.space
        gold = intermediate_of(ex, self.opts.separator)
        s2, pos2 = self.prompter.build(*self.fill(p["step2"], ex, gold))
        cf_i = wrong_intermediate(sp, gold, zlib.crc32(ex.id.encode()))
        cf, pos3 = self.prompter.build(*self.fill(p["step2"], ex, sp.inters[cf_i]))
        return {**self.step1_features(ex), "s2_ids": s2, "s2_pos": pos2, "cf_ids": cf, "cf_pos": pos3,
                "labels": self.final_index(ex), "inter_labels": sp.inters.index(gold) if gold in sp.inters else -100}

    def loss(self, m: MaskedModule, b: dict) -> torch.Tensor:
        nll = torch.nn.functional.nll_loss
        lp1, lp1y = self.step1_scores(m, b)
        lp2 = m.scores("final", b["s2_ids"], b["s2_att"], b["s2_pos"])
        # Summed in the order of the unweighted loss, so step2_weight 1.0 gives it bit for bit.
        s2 = self.opts.step2_weight
        loss = nll(lp1, b["inter_labels"], ignore_index=-100) + s2 * nll(lp2, b["labels"], ignore_index=-100)
        if lp1y is not None:
            loss = loss + nll(lp1y, b["labels"], ignore_index=-100)
        w = self.opts.contrastive_weight
        if w > 0:
            lpc = m.scores("final", b["cf_ids"], b["cf_att"], b["cf_pos"])
            ok = b["labels"] >= 0
            y = b["labels"].clamp(min=0).unsqueeze(1)
            gap = lp2.gather(1, y).squeeze(1) - lpc.gather(1, y).squeeze(1)
            hinge = torch.relu(self.opts.margin - gap)
            loss = loss + s2 * w * (hinge * ok).sum() / ok.sum().clamp(min=1)
        return loss

    def rectified(self, p_inter: torch.Tensor, p_label: torch.Tensor | None) -> torch.Tensor:
        """P(intermediate) after rectification: the mean of step I's own and the one its label
        prediction implies (each intermediate's labels' probabilities summed)."""
        if p_label is None:
            return p_inter
        implied = torch.stack([p_label[:, kids].sum(1) for kids in self.space.children()], 1)
        return (p_inter + implied) / 2

    def classify(self, examples: list[Example]) -> list[tuple[str, dict]]:
        m, sp, o = self.module, self.space, self.opts
        b = self.batch([self.step1_features(ex) for ex in examples])
        lp1, lp1y = self.step1_scores(m, b)
        p_step1 = lp1.exp()  # [B, n_inters]
        p_label1 = lp1y.exp() if lp1y is not None and o.rectify else None  # [B, n_finals]
        p1 = self.rectified(p_step1, p_label1)
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
            if not o.rectify:
                total += torch.softmax(logits, -1)
                continue
            allowed = torch.zeros_like(logits)
            if o.consistent:  # only c's own labels
                allowed.fill_(float("-inf"))
                for r, c in enumerate(top_i[:, j].tolist()):
                    allowed[r, children[c]] = 0.0
            p2 = torch.softmax(logits + allowed, -1)
            if p_label1 is not None:  # step I's label prediction, renormalised the same way
                p2 = (p2 + torch.softmax(lp1y + allowed, -1)) / 2
            total += top_p[:, j:j + 1] * p2
        best = total.argmax(1).tolist()
        out = []
        for r, ex in enumerate(examples):
            gold = intermediate_of(ex, o.separator) if ex.answer else None  # a served question has no gold
            extra = {"intermediate": sp.inters[top_i[r, 0].item()], "gold_intermediate": gold,
                     "p_intermediate": round(top_p[r, 0].item(), 4)}
            if p_label1 is not None:  # what step I alone said, before rectification
                extra["step1_intermediate"] = sp.inters[p_step1[r].argmax().item()]
            out.append((sp.finals[best[r]], extra))
        return out
