"""CoT fine-tuning as in the CoT Collection (Kim et al., EMNLP 2023; METHODS.md §3): source
`{question}\n\nLet's think step by step.\n`, target `{rationale}\n[ANSWER] {answer}`, with a
configurable share of questions that also get a direct pair (`{question}\n\n` -> `[ANSWER] {a}`),
and its direct twin `cot_tuning_direct` (direct pairs only, same format) for equal-budget
comparisons. The answer of a multiple-choice question is written as the option's text.

Inference: greedy generation of the rationale; for a question with options (`score_options`,
default on), the student then scores every option by its mean per-token log-probability as the
continuation `\n[ANSWER] {option}` of what it wrote, and the best option is its answer, so an
unseen task's options are always comparable; free-form questions read the text after `[ANSWER]`.
"""
from __future__ import annotations

import zlib
from typing import ClassVar

from pydantic import Field

from ..tasks.answers import extract
from ..tasks.schema import Example, choice_letters
from .base import Method, MethodOptions, Output, Pair, Parsed

ANSWER = "[ANSWER]"
COT_TRIGGER = "Let's think step by step."


class CoTTuningOptions(MethodOptions):
    direct_share: float = Field(0.0, ge=0, le=1, description="share of questions that also get a direct-answer pair")
    score_options: bool = Field(True, description="multiple choice: pick the option with the highest log-probability")


class CoTTuning(Method):
    name = "cot_tuning"
    uses_rationales = True
    paper = "Kim et al. 2023, The CoT Collection (arXiv:2305.14045)"
    Options: ClassVar[type[CoTTuningOptions]] = CoTTuningOptions
    inference_options = frozenset({"score_options"})

    @staticmethod
    def answer_text(ex: Example, gold: str) -> str:
        if ex.choices and len(gold) == 1 and gold in choice_letters(len(ex.choices)):
            return ex.choices[ord(gold) - ord("A")]
        return gold

    def cot_source(self, ex: Example) -> str:
        return f"{ex.question}\n\n{COT_TRIGGER}\n"

    def direct_source(self, ex: Example) -> str:
        return f"{ex.question}\n\n"

    def direct_pair(self, ex: Example) -> Pair:
        return Pair(self.direct_source(ex), f"{ANSWER} {self.answer_text(ex, self.gold(ex))}")

    def train_pairs(self, ex, rationales, seq2seq):
        a = self.answer_text(ex, self.gold(ex))
        pairs = [Pair(self.cot_source(ex), f"{r}\n{ANSWER} {a}") for r in rationales]
        if pairs and zlib.crc32(ex.id.encode()) % 1000 < 1000 * self.opts.direct_share:
            pairs.append(self.direct_pair(ex))
        return pairs

    def source(self, ex, seq2seq):
        return self.cot_source(ex)

    def stop(self):
        return (ANSWER,)  # options are scored after the rationale; free-form answers are read after it

    def parse(self, text, ex):
        rationale, _, after = text.partition(ANSWER)
        got = extract(after, ex.kind, ex.choices, position="first") if after.strip() else None
        if got is None and ex.choices and after.strip():
            low = after.strip().lower()
            hits = [l for l, c in zip(choice_letters(len(ex.choices)), ex.choices) if c.lower() == low]
            got = hits[0] if hits else None
        return Parsed(got, rationale.strip() or None)

    def predict(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None):
        from .. import hf

        prompts = [self.source(e, seq2seq) for e in examples]
        scored = [i for i, e in enumerate(examples) if e.choices and self.opts.score_options]
        free = sorted(set(range(len(examples))) - set(scored))
        gens: list = [None] * len(examples)
        # Questions with options stop at [ANSWER] (the options are scored after it); free-form
        # ones (numbers, yes/no, text) must go on to write their answer after it.
        for idx, stop in ((scored, (ANSWER,)), (free, ())):
            if idx:
                got = hf.generate(model, tok, [prompts[i] for i in idx], seq2seq=seq2seq, max_new_tokens=max_new_tokens,
                                  temperature=0.0, batch_size=batch_size, stop=stop, markers=(ANSWER,),
                                  progress=progress)
                for i, g in zip(idx, got):
                    gens[i] = g
        outs = []
        rows = [(i, j) for i in scored for j in range(len(examples[i].choices))]
        scores = hf.continuation_logprob(
            model, tok, seq2seq, [prompts[i] for i, _ in rows],
            [gens[i].text.split(ANSWER)[0].rstrip() for i, _ in rows],
            [f"{chr(10) if gens[i].text.split(ANSWER)[0].strip() else ''}{ANSWER} {examples[i].choices[j]}"
             for i, j in rows], batch_size=batch_size) if rows else []
        by_q: dict[int, list[float]] = {}
        for (i, _), sc in zip(rows, scores):
            by_q.setdefault(i, []).append(sc)
        for i, (ex, g) in enumerate(zip(examples, gens)):
            if i in by_q:
                best = max(range(len(by_q[i])), key=by_q[i].__getitem__)
                parsed = Parsed(choice_letters(len(ex.choices))[best], g.text.split(ANSWER)[0].strip() or None)
                outs.append(Output(g, parsed, extra={"option_logprobs": [round(x, 4) for x in by_q[i]]}))
            else:
                outs.append(Output(g, self.parse(g.text, ex)))
        return outs


class CoTTuningDirect(CoTTuning):
    """The direct twin: the same format with no rationale (`{q}\n\n` -> `[ANSWER] {a}`)."""

    name = "cot_tuning_direct"
    uses_rationales = False
    paper = "direct twin of cot_tuning (equal budget)"

    def train_pairs(self, ex, rationales, seq2seq):
        return [self.direct_pair(ex)]

    def source(self, ex, seq2seq):
        return self.direct_source(ex)
