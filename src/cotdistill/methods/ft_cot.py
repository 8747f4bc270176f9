"""`ft_cot`: Fine-tune-CoT (Ho et al., "Large Language Models Are Reasoning Teachers", ACL 2023).

Decoder-only: `{q} ###` -> ` {r} --> {a}` + EOS; encoder-decoder: `{q}` -> `{r} --> {a}`.
One pair per kept rationale, so diverse reasoning (several rationales per question) simply
yields several pairs. Inference is greedy; the answer is read after `-->`."""
from __future__ import annotations

from .base import SEP, Method, Pair, Parsed, answer_after_separator


class FineTuneCoT(Method):
    name = "ft_cot"
    uses_rationales = True
    paper = "Ho et al. 2023, arXiv:2212.10071"

    def train_pairs(self, ex, rationales, seq2seq):
        src, a = self.source(ex, seq2seq), self.gold(ex)
        return [Pair(src, self._target(f"{r} {SEP} {a}", seq2seq)) for r in rationales]

    def parse(self, text, ex):
        rationale = text.split(SEP, 1)[0].strip() if SEP in text else text.strip()
        return Parsed(answer_after_separator(text, ex), rationale)
