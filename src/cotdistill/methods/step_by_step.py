"""`step_by_step`: Distilling step-by-step (Hsieh et al., ACL 2023, arXiv:2305.02301).

Multi-task training on the same question: `predict: {q}` -> `{a}` and `explain: {q}` -> `{r}`
(decoder-only students add the ` ###` prompt end). Each rationale yields one pair of each, and
the pairs carry weights alpha and 1 - alpha; the trainer averages per-sequence losses with these
weights, which is the paper's alpha * answer-loss + (1 - alpha) * rationale-loss. Inference runs
only `predict:`, so no rationale tokens are generated; `explain: true` (CLI `--explain`) also
runs `explain:` and records its output as the rationale.
"""
from __future__ import annotations

from pydantic import Field

from ..tasks.answers import extract
from .base import Method, MethodOptions, Output, Pair, Parsed


class StepByStepOptions(MethodOptions):
    alpha: float = Field(0.5, gt=0.0, lt=1.0, description="weight of the answer loss; 1 - alpha on the rationale")
    explain: bool = Field(False, description="also generate the rationale with the `explain:` prompt")


class DistillingStepByStep(Method):
    name = "step_by_step"
    uses_rationales = True
    paper = "Hsieh et al. 2023, arXiv:2305.02301"
    Options = StepByStepOptions
    inference_options = frozenset({"explain"})

    def source(self, ex, seq2seq):
        return self.prefixed_source("predict", ex, seq2seq)

    def train_pairs(self, ex, rationales, seq2seq):
        a = self.opts.alpha
        pairs = []
        for r in rationales:
            pairs.append(Pair(self.source(ex, seq2seq), self._target(self.gold(ex), seq2seq), a))
            pairs.append(Pair(self.prefixed_source("explain", ex, seq2seq), self._target(r, seq2seq), 1.0 - a))
        return pairs

    def parse(self, text, ex):
        return Parsed(extract(text, ex.kind, ex.choices, position="first"), None)

    def predict(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None):
        outs = super().predict(model, tok, seq2seq, examples, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, progress=progress)
        if not self.opts.explain:
            return outs
        why = self._generate_parse(model, tok, seq2seq, examples,
                                   [self.prefixed_source("explain", e, seq2seq) for e in examples], (),
                                   lambda text, ex: Parsed(None, text.strip()), max_new_tokens=max_new_tokens,
                                   batch_size=batch_size)
        return [Output(o.generated, Parsed(o.parsed.answer, w.parsed.rationale),
                       {"explain_generation": w.generated.text}, extra_tokens=w.generated.completion_tokens)
                for o, w in zip(outs, why)]
