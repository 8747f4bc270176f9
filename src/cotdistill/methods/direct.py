"""`direct`: vanilla fine-tuning on the answer alone, the baseline Fine-tune-CoT must beat on
multi-step tasks (Ho et al., ACL 2023, "vanilla fine-tuning")."""
from __future__ import annotations

from ..tasks.answers import extract
from .base import Method, Pair, Parsed


class Direct(Method):
    name = "direct"
    uses_rationales = False
    paper = "Ho et al. 2023 (baseline)"

    def train_pairs(self, ex, rationales, seq2seq):
        return [Pair(self.source(ex, seq2seq), self._target(self.gold(ex), seq2seq))]

    def parse(self, text, ex):
        return Parsed(extract(text, ex.kind, ex.choices, position="first"), None)
