"""AS-ES learning (Xi et al., "Towards Efficient CoT Learning in Small Models", ACL 2024 Findings;
METHODS.md §5): each kept rationale is split into segments labelled extractive (ES) or abstractive
(AS) (`cotdistill/segments.py`), and the student learns to write ONE segment at a time given the
question and the segments so far; the last step writes `--> {answer}`, read by the shared
extractor. Inference repeats generation until the answer step or `max_segments` steps.

- `as_es`: one student; each target starts with the kind it writes (`ES: ...`, `AS: ...`), so
  the student also decides which kind comes next. A decoder-only student learns all the steps of
  a rationale in ONE sequence (`pack`, on by default): in `{q} ### ES: s1 | AS: s2 | --> {a}`
  step k's context (`{q} ### ES: s1 |`) is a prefix and its target (` AS: s2 |`) the tokens that
  follow, so the loss on everything after `###` is the loss of every step at once, and an
  optimizer step sees whole rationales (as `ft_cot` does) instead of one segment per row.
  Inference still writes one segment per step, stopping at ` |`.
- `as_es_dual`: two students, one per kind, trained together (one module, one loop: each pair's
  loss goes to its kind's student). A turn ends with the kind that comes next (`... [AS]`); the
  ES student starts, handing over at once (`[AS]`) when the rationale opens with an abstractive
  step; the AS student writes the answer step. Saved as the ES student in `model/` and the AS
  student in `model/as_student/`.

Context: decoder-only `{q} ### {s1} {s2} ...` -> ` {target}` + EOS (packed: `{q} ### ES: {s1} | ...`
-> ` AS: {s2} |`); encoder-decoder `{q} ### {s1} {s2} ...` -> `{target}`.
"""
from __future__ import annotations

import copy
import functools
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field

from ..errors import ModelError
from ..segments import AS, ES, label, split_segments
from ..students import load_causal_lm
from ..students.data import Collator, encode_pairs
from ..students.modules import OwnModule
from ..tasks.schema import Example
from .base import PROMPT_END, SEP, Method, MethodOptions, Output, Pair, Parsed, TrainingParts, answer_after_separator

log = logging.getLogger(__name__)
AS_DIR = "as_student"
_KIND_PREFIX = re.compile(r"^\s*(ES|AS)\s*:\s*", re.I)
_NEXT_TAG = re.compile(r"\[\s*(ES|AS)\s*\]\s*$", re.I)
SEGMENT_END = "|"  # ends a step's segment in a packed as_es sequence
ANSWER = "answer"  # loss group of the answer step


class ASESOptions(MethodOptions):
    rule: Literal["overlap", "entropy"] = Field("overlap", description="ES/AS labelling rule (segments.py)")
    threshold: float | None = Field(None, description="overlap: ES above this share (0.75); entropy: ES at or "
                                    "below this many nats (2.0)")
    level: Literal["sentence", "clause"] = "sentence"
    segment_model: str | None = Field(None, description="entropy rule: reference causal LM (hub id, path, preset:NAME)")
    max_segments: int = Field(16, ge=1, description="inference: segment steps before giving up (the answer step "
                              "included)")


class OneModelOptions(ASESOptions):
    pack: bool = Field(True, description="as_es with a decoder-only student: learn a rationale's steps in one "
                       "sequence (`ES: s1 | AS: s2 | --> a`; the same loss as a pair per step, one row per "
                       "rationale); false: a pair per step. Encoder-decoder students always train a pair per step")


class _Segmented(Method):
    """What both AS-ES methods share: labelled segments per rationale, contexts, iterative decoding."""

    uses_rationales = True
    Options: ClassVar[type[ASESOptions]] = ASESOptions
    inference_options = frozenset({"max_segments"})

    # -- segments --------------------------------------------------------------------------------
    def segments(self, ex: Example, rationale: str) -> list[tuple[str, str]]:
        """[(kind, text)] of one rationale; empty when it yields no segment."""
        o = self.opts
        ref = tok = None
        if o.rule == "entropy":
            from ..errors import ConfigError

            if not o.segment_model:
                raise ConfigError(f"`method_options.{self.name}.segment_model`: the entropy rule needs a reference "
                                  f"causal LM")
            ref, tok = _reference(o.segment_model, f"method_options.{self.name}.segment_model")
        segs = label(split_segments(rationale, o.level), ex.question, o.rule, o.threshold, ref, tok)
        return [(s.kind, s.text) for s in segs]

    def segment_counts(self, examples: list[Example], rationales: dict[str, list[str]]) -> dict[str, int]:
        """Segments by kind over the rationales a student trains on, and rationales with none."""
        counts: Counter = Counter()
        for ex in examples:
            for r in rationales.get(ex.id, []):
                segs = self.segments(ex, r)
                counts.update(f"{kind.lower()}_segments" for kind, _ in segs)
                counts["rationales_without_segments"] += not segs
        return {k: v for k, v in counts.items() if v}

    def training(self, model, tok, seq2seq, train, val, rationales, *, seed) -> TrainingParts:
        parts = super().training(model, tok, seq2seq, train, val, rationales, seed=seed)
        parts.info["segments"] = self.segment_counts([*train, *val], rationales)
        return parts

    @staticmethod
    def context(ex: Example, done: list[str], seq2seq: bool) -> str:
        text = f"{ex.question}{PROMPT_END}" + "".join(f" {s}" for s in done)
        return text

    # -- inference -------------------------------------------------------------------------------
    def predict(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None) -> list[Output]:
        from .. import hf

        n = len(examples)
        done: list[list[tuple[str, str]]] = [[] for _ in range(n)]
        turn = [self.first_turn() for _ in range(n)]
        tokens, prompt_tokens, seconds = [0] * n, [0] * n, [0.0] * n
        answer_text: list[str | None] = [None] * n
        active = list(range(n))
        steps = [0] * n
        limit = hf.input_limit(model, tok)
        full = [False] * n  # the question and its segments outgrew the student's input
        for _ in range(self.opts.max_segments):
            if not active:
                break
            # Groups fixed before any generation: a question whose turn passes to the other kind
            # in this step must wait for the next one (else it takes two steps at once).
            groups = {kind: [i for i in active if turn[i] == kind] for kind in sorted({turn[i] for i in active})}
            for kind, idx in groups.items():
                prompts = [self.context(examples[i], [self.written(k, t, seq2seq) for k, t in done[i]], seq2seq)
                           for i in idx]
                t0 = time.perf_counter()
                # The context grows each step: one that no longer fits comes back too_long and stops, unanswered.
                gens = hf.generate(self.student_for(kind, model), tok, prompts, seq2seq=seq2seq,
                                   max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size,
                                   markers=(SEP,), stop=self.stops(seq2seq), max_input_tokens=limit,
                                   too_long="mark")
                per = (time.perf_counter() - t0) / max(1, sum(g.finish_reason != hf.TOO_LONG for g in gens))
                for i, g in zip(idx, gens):
                    if g.finish_reason == hf.TOO_LONG:
                        full[i] = True
                        continue
                    steps[i] += 1
                    tokens[i] += g.completion_tokens
                    prompt_tokens[i] = g.prompt_tokens
                    seconds[i] += per
                    if SEP in g.text:
                        answer_text[i] = g.text[g.text.index(SEP):]
                        before = g.text[:g.text.index(SEP)].strip()
                        if before:
                            done[i].append(self.read_segment(before, turn[i])[:2])
                        continue
                    seg_kind, text, nxt = self.read_segment(g.text, turn[i])
                    if text:
                        done[i].append((seg_kind, text))
                    turn[i] = nxt
            active = [i for i in active if answer_text[i] is None and not full[i]]
        if any(full):
            log.warning("%d of %d questions stopped before their answer step: question and segments outgrew the "
                        "student's input limit (%d tokens); scored wrong (context_full in the predictions)",
                        sum(full), n, limit)
        if progress:
            progress(n)
        outs = []
        for i, ex in enumerate(examples):
            finished = answer_text[i] is not None
            text = " ".join(t for _, t in done[i]) + (f" {answer_text[i]}" if finished else "")
            gen = hf.Generated(text.strip(), "stop" if finished else "length", prompt_tokens[i], tokens[i], seconds[i])
            answer = answer_after_separator(answer_text[i], ex) if finished else None
            outs.append(Output(gen, Parsed(answer, " ".join(t for _, t in done[i]) or None),
                               extra={"segments": [[k, t] for k, t in done[i]], "segment_steps": steps[i],
                                      "reached_answer": finished, "context_full": full[i]}, seconds=seconds[i]))
        return outs

    def parse(self, text: str, ex: Example) -> Parsed:
        rationale = text.split(SEP, 1)[0].strip() if SEP in text else text.strip()
        return Parsed(answer_after_separator(text, ex), rationale)

    def first_turn(self) -> str:
        return ES

    def written(self, kind: str, text: str, seq2seq: bool) -> str:
        """A segment as the context shows it to the next step."""
        return text

    def stops(self, seq2seq: bool) -> tuple[str, ...]:
        return ()

    def student_for(self, kind: str, model):
        return model

    def read_segment(self, text: str, turn: str) -> tuple[str, str, str]:
        """(kind of the segment written, its text, the kind that comes next)."""
        raise NotImplementedError


class ASES(_Segmented):
    name = "as_es"
    paper = "Xi et al. 2024, Towards Efficient CoT Learning in Small Models (one model, kind prompts)"
    Options: ClassVar[type[OneModelOptions]] = OneModelOptions

    def packed(self, seq2seq: bool) -> bool:
        return self.opts.pack and not seq2seq

    def written(self, kind, text, seq2seq):
        return f"{kind}: {text} {SEGMENT_END}" if self.packed(seq2seq) else text

    def stops(self, seq2seq):
        return (SEGMENT_END,) if self.packed(seq2seq) else ()

    def steps(self, ex, rationales, seq2seq) -> list[tuple[str, Pair]]:
        """(kind of the segment written, pair) for every step of every rationale, as inference takes
        them; the answer step counts as AS. Packed, a step before the answer ends at ` |` (no
        end-of-sequence token), exactly as it stands inside its row."""
        return [step for r in rationales for step in self._steps(ex, r, seq2seq)]

    def loss_groups(self, ex, rationales, seq2seq):
        return [(ANSWER if SEP in p.target else kind, p) for kind, p in self.steps(ex, rationales, seq2seq)]

    def _steps(self, ex, rationale, seq2seq) -> list[tuple[str, Pair]]:
        segs = self.segments(ex, rationale)
        if not segs:
            return []
        shown = [self.written(k, t, seq2seq) for k, t in segs]
        packed = self.packed(seq2seq)
        out = []
        for k, (kind, text) in enumerate(segs):
            body = shown[k] if packed else f"{kind}: {text}"
            out.append((kind, Pair(self.context(ex, shown[:k], seq2seq), self._target(body, seq2seq), ends=not packed)))
        out.append((AS, Pair(self.context(ex, shown, seq2seq), self._target(f"{SEP} {self.gold(ex)}", seq2seq))))
        return out

    def train_pairs(self, ex, rationales, seq2seq):
        if not self.packed(seq2seq):
            return [p for _, p in self.steps(ex, rationales, seq2seq)]
        pairs = []
        for r in rationales:
            # Step k's context is step k-1's context plus its target, so the steps are one sequence:
            # the first context, then every target, with the loss on all of them.
            if steps := self._steps(ex, r, seq2seq):
                pairs.append(Pair(steps[0][1].source, "".join(p.target for _, p in steps)))
        return pairs

    def read_segment(self, text, turn):
        m = _KIND_PREFIX.match(text)
        kind = m.group(1).upper() if m else AS
        return kind, text[m.end():].strip() if m else text.strip(), turn


class DualModule(OwnModule):
    """Two students trained in one loop: each row's loss goes to the student of its kind."""

    def __init__(self, es_model, as_model):
        super().__init__()
        self.es, self.as_ = es_model, as_model
        self.ready(es_model.config)

    def students(self):
        return [self.es, self.as_]

    def target_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, number) of the target tokens of a batch, each row scored by its kind's student."""
        from ..students.train import token_losses

        total, n = torch.zeros(()), torch.zeros(())
        for k, m in ((0, self.es), (1, self.as_)):
            rows = batch["kind"] == k
            if rows.any():
                tok_loss, mask, _, _ = token_losses(m, {key: batch[key][rows] for key in
                                                        ("input_ids", "attention_mask", "labels")})
                total, n = total + (tok_loss * mask).sum().cpu(), n + mask.sum().cpu()
        return total, n

    def forward(self, input_ids, attention_mask, labels, kind, **kw):
        losses, n = [], 0
        for k, m in ((0, self.es), (1, self.as_)):
            rows = kind == k
            if rows.any():
                out = m(input_ids=input_ids[rows], attention_mask=attention_mask[rows], labels=labels[rows])
                losses.append(out.loss * rows.sum())
                n += int(rows.sum())
        return {"loss": sum(losses) / max(1, n)}


class ASESDual(_Segmented):
    name = "as_es_dual"
    paper = "Xi et al. 2024, Towards Efficient CoT Learning in Small Models (two models, one per kind)"
    owns_training = True

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self.as_model = None  # the AS student at inference (load_extras)

    def turns(self, ex, rationales, seq2seq) -> list[tuple[str, Pair]]:
        """(student kind, pair) for every turn of every rationale."""
        out = []
        for r in rationales:
            segs = self.segments(ex, r)
            if not segs:
                continue
            done: list[str] = []
            if segs[0][0] == AS:  # the ES student opens and hands over at once
                out.append((ES, Pair(self.context(ex, done, seq2seq), self._target(f"[{AS}]", seq2seq))))
            for k, (kind, text) in enumerate(segs):
                nxt = segs[k + 1][0] if k + 1 < len(segs) else AS  # the AS student writes the answer
                out.append((kind, Pair(self.context(ex, done, seq2seq), self._target(f"{text} [{nxt}]", seq2seq))))
                done.append(text)
            out.append((AS, Pair(self.context(ex, done, seq2seq), self._target(f"{SEP} {self.gold(ex)}", seq2seq))))
        return out

    def train_pairs(self, ex, rationales, seq2seq):
        return [p for _, p in self.turns(ex, rationales, seq2seq)]

    # -- training: one module holding both students ----------------------------------------------
    def training(self, model, tok, seq2seq, train, val, rationales, *, seed) -> TrainingParts:
        """Both students start from the same (pretrained or seeded) weights; each turn's loss goes to
        its kind's student."""
        def encode(items: list, max_tokens: int) -> tuple[list[dict], int]:
            """Questions (all their turns) or (kind, pair) turns (the loss groups)."""
            feats, skipped = [], 0
            for item in items:
                turns = self.turns(item, rationales.get(item.id, []), seq2seq) if isinstance(item, Example) else [item]
                for kind, pair in turns:
                    f, s = encode_pairs([pair], tok, seq2seq, max_tokens)
                    skipped += s
                    feats.extend({**x, "kind": 0 if kind == ES else 1} for x in f)
            return feats, skipped

        base = Collator(tok.pad_token_id)

        def collate(batch: list[dict]) -> dict:
            return {**base(batch), "kind": torch.tensor([b["kind"] for b in batch])}

        groups: dict[str, list] = {}
        for ex in val:  # the loss of each kind of turn, and of the answer step, as as_es logs it
            for kind, pair in self.turns(ex, rationales.get(ex.id, []), seq2seq):
                groups.setdefault(ANSWER if SEP in pair.target else kind, []).append((kind, pair))
        module = DualModule(model, copy.deepcopy(model))
        return TrainingParts(module, train, val, len(self.pairs(train, rationales, seq2seq)), encode=encode,
                             collator=collate, groups=groups,
                             info={"segments": self.segment_counts([*train, *val], rationales)})

    def after_train(self, model, tok, seq2seq, held_out, model_dir: Path, *, parts, **kw) -> dict:
        parts.model.as_.save_pretrained(model_dir / AS_DIR)
        tok.save_pretrained(model_dir / AS_DIR)
        return {}

    def load_extras(self, model_dir: Path, model) -> "ASESDual":
        from ..students import load_student

        path = Path(model_dir) / AS_DIR
        if not (path / "config.json").exists():
            raise ModelError(f"{model_dir}: an as_es_dual student needs both of its models; the AS student "
                             f"({AS_DIR}/) is missing")
        as_model, _, _ = load_student(str(path))
        return self.holding(as_model=as_model.to(next(model.parameters()).device))

    def student_for(self, kind, model):
        if kind == AS:
            if self.as_model is None:
                raise ModelError("as_es_dual: the AS student is not loaded (load_extras was not called)")
            return self.as_model
        return model

    def read_segment(self, text, turn):
        m = _NEXT_TAG.search(text)
        nxt = m.group(1).upper() if m else (AS if turn == ES else ES)
        return turn, (text[:m.start()] if m else text).strip(), nxt


@functools.lru_cache(maxsize=2)
def _reference(name: str, field: str):
    """The entropy rule's reference causal LM, loaded once per process (labelling calls it per rationale)."""
    return load_causal_lm(name, field)
