"""`post`: post-thinking (Chen et al. 2024, "Distilling Reasoning Ability from LLMs with Adaptive
Thinking", arXiv:2404.09170).

Decoder-only: `{q} ###` -> ` {a} --> {r}` + EOS; encoder-decoder: `{q}` -> `{a} --> {r}`.
The answer comes first, so it never depends on rationale tokens the student might get wrong,
while the loss on the rationale still shapes the model. At inference generation stops at the
separator, right after the answer (a stopping criterion inside `generate`, so the rationale is
never computed); `explain: true` (CLI `--explain`) lets it write the rationale too.
"""
from __future__ import annotations

from pydantic import Field

from ..tasks.answers import extract
from .base import SEP, Method, MethodOptions, Pair, Parsed


class PostOptions(MethodOptions):
    explain: bool = Field(False, description="generate the rationale after the answer (costs its tokens)")
    answer_weight: float = Field(0.0, ge=0, description="also train each question's answer alone (answer and "
                                 "separator), this pair weighted against a whole row's 1; 0: off")


def parse_answer_first(text: str, ex) -> Parsed:
    """The answer is the first candidate before the separator (or anywhere, when the student never
    wrote it); the rationale is what follows the separator, if it was generated."""
    head, sep, tail = text.partition(SEP)
    answer = extract(head, ex.kind, ex.choices, position="first")
    if answer is None and not sep:
        answer = extract(text, ex.kind, ex.choices, position="first")
    return Parsed(answer, tail.strip() or None)


class PostThinking(Method):
    name = "post"
    uses_rationales = True
    paper = "Chen et al. 2024, arXiv:2404.09170"
    Options = PostOptions
    inference_options = frozenset({"explain"})

    def head(self, ex) -> str:
        """What every target starts with: the answer and the separator generation stops at."""
        return f"{self.gold(ex)} {SEP}"

    def answer_pair(self, ex, seq2seq, weight: float = 1.0) -> Pair:
        """The answer and separator alone, exactly as every target starts, without the end of sequence."""
        return Pair(self.source(ex, seq2seq), self._target(self.head(ex), seq2seq), weight=weight, ends=False)

    def train_pairs(self, ex, rationales, seq2seq):
        src, head = self.source(ex, seq2seq), self.head(ex)
        pairs = [Pair(src, self._target(f"{head} {r}", seq2seq)) for r in rationales]
        if self.opts.answer_weight and rationales:
            # Within a row the answer is ~1 of 80 target tokens; a pair's loss is its tokens' mean, so
            # the answer alone as a pair gives it answer_weight of a row's say (SmolLM2's Coin Flip
            # answer stayed at chance in 100 steps without it: docs/results/answer-first.md).
            pairs.append(self.answer_pair(ex, seq2seq, self.opts.answer_weight))
        return pairs

    def loss_groups(self, ex, rationales, seq2seq):
        # The answer is one or two tokens of a target some 80 long, so the whole validation loss
        # (which picks the checkpoint) says little about it: its own curve, `eval_loss_answer`,
        # shows whether the student learns the answer at all, or only the rationale.
        return [("answer", self.answer_pair(ex, seq2seq))] if rationales else []

    def parse(self, text, ex):
        return parse_answer_first(text, ex)

    def stop(self):
        return () if self.opts.explain else (SEP,)
