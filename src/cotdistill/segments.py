"""Rationale segments for AS-ES learning (Xi et al. 2024; METHODS.md §5): split a rationale into
segments and label each one extractive (ES: restates facts and numbers already in the question)
or abstractive (AS: a new inference, a calculation, a conclusion).

Splitting. Sentences end at `.`, `!` or `?` followed by white space, and at line breaks; a period
inside a number (`3.5`), after a known abbreviation (`e.g.`, `Mr.`, `approx.`), inside a
calculator annotation (`<<48/2=24>>`) or before a lower-case word does not end one. With
`level="clause"`, sentences are further cut before `; `, `, so `, `, then `, `, which ` and
`, and then ` (sub-sentence steps such as "Tom has 3 apples, so he gives 1 away").

Labelling rules:
- `overlap` (default): the share of a segment's *evidence* that the question already holds.
  Evidence is its numbers when it has any (a number the question
  lacks is a computed result, the mark of an abstractive step), else its content words (stop
  words left out), ES when the share is above `threshold` (default 0.75: a calculation that
  brings one new number out of three, "84 / 2 = 42", is AS). Calculator annotations are left out
  of the evidence: they repeat the equation they annotate.
- `entropy`: the mean per-token entropy (nats) of the segment under a reference causal LM given
  the question and the segments before it; ES when it is at most `threshold` (text the model can
  predict from what it has read).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from .errors import ConfigError

ES, AS = "ES", "AS"
ABBREVIATIONS = {"e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "st", "vs", "approx", "no", "fig", "jr", "sr", "p.m",
                 "a.m", "u.s", "inc", "ltd", "co", "min", "hr", "hrs", "ft", "oz", "lb", "lbs", "in"}
STOP_WORDS = set("""a an the and or but if then so of to in on at by for with from as is are was were be been being
it its this that these those there here he she they we you i his her their our your my me him them us do does did
has have had will would can could should shall may might must not no than too very just also each every all any some
what which who whom whose when where why how into out up down over under again more most much many per""".split())
_CALC = re.compile(r"<<[^>]*>>")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?%?")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CLAUSE = re.compile(r"(?:;\s+|,\s+(?=(?:so|then|which|and then|therefore|thus)\b))", re.I)


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str  # ES or AS
    score: float  # overlap share, or mean entropy in nats


def split_segments(text: str, level: Literal["sentence", "clause"] = "sentence") -> list[str]:
    """The rationale's segments, in order, each stripped; empty pieces are dropped."""
    if level not in ("sentence", "clause"):
        raise ConfigError(f"segment level must be 'sentence' or 'clause', got {level!r}")
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        for sent in _sentences(line):
            parts = _CLAUSE.split(sent) if level == "clause" else [sent]
            out.extend(p.strip() for p in parts if p.strip())
    return out


def _sentences(line: str) -> list[str]:
    # Mask calculator annotations so that the periods and question marks inside them are inert.
    masked = _CALC.sub(lambda m: "\0" * len(m.group()), line)
    cuts, start = [], 0
    for m in re.finditer(r"[.!?]+(?=\s|$)", masked):
        end = m.end()
        before = masked[start:m.start()].split()
        last = before[-1].lower().rstrip(".") if before else ""
        if m.group() == "." and (last in ABBREVIATIONS or _lowercase_follows(masked, end)):
            continue
        cuts.append((start, end))
        start = end
    cuts.append((start, len(masked)))
    return [line[a:b].strip() for a, b in cuts if line[a:b].strip()]


def _lowercase_follows(text: str, end: int) -> bool:
    rest = text[end:].lstrip()
    return bool(rest) and rest[0].islower()


def numbers(text: str) -> set[str]:
    """Numbers as values: '$1,200' -> '1200', '3.50' -> '3.5', '-2' -> '2' (a sign is often an
    operator in a rationale)."""
    out = set()
    for m in _NUMBER.finditer(_CALC.sub(" ", text)):
        raw = m.group().lstrip("-−$").rstrip("%").replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        out.add(f"{value:g}")
    return out


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(_CALC.sub(" ", text).lower()) if w not in STOP_WORDS and len(w) > 1}


def overlap_share(segment: str, question: str) -> float:
    """Share of the segment's evidence (its numbers, else its content words) found in the question;
    1.0 for a segment with neither (nothing new in it)."""
    nums = numbers(segment)
    if nums:
        return len(nums & numbers(question)) / len(nums)
    words = content_words(segment)
    if not words:
        return 1.0
    qwords = content_words(question)
    # a plural or verb form of a question word counts ("apples" / "apple", "sold" is left as is)
    found = sum(1 for w in words if w in qwords or w.rstrip("s") in qwords or f"{w}s" in qwords)
    return found / len(words)


OVERLAP_THRESHOLD = 0.75
ENTROPY_THRESHOLD = 2.0  # nats


def label_overlap(segments: Sequence[str], question: str, threshold: float = OVERLAP_THRESHOLD) -> list[Segment]:
    return [Segment(s, ES if (share := overlap_share(s, question)) > threshold else AS, round(share, 4))
            for s in segments]


def label_entropy(segments: Sequence[str], question: str, model, tok,
                  threshold: float = ENTROPY_THRESHOLD) -> list[Segment]:
    """Mean token entropy of each segment under a causal LM, given the question and the segments
    before it (one forward pass over the whole text)."""
    import torch

    pieces = [question.strip(), *segments]
    ids: list[int] = []
    spans = []
    for i, p in enumerate(pieces):
        toks = tok((" " if i else "") + p, add_special_tokens=False)["input_ids"]
        spans.append((len(ids), len(ids) + len(toks)))
        ids.extend(toks)
    if tok.bos_token_id is not None:
        ids = [tok.bos_token_id, *ids]
        spans = [(a + 1, b + 1) for a, b in spans]
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    ent = -(logp.exp() * logp).sum(-1)  # entropy of the prediction made at each position
    out = []
    for s, (a, b) in zip(segments, spans[1:]):
        # token t is predicted at position t - 1
        vals = ent[max(a - 1, 0):b - 1]
        mean = float(vals.mean()) if len(vals) else 0.0
        out.append(Segment(s, ES if mean <= threshold else AS, round(mean, 4)))
    return out


def label(segments: Sequence[str], question: str, rule: str = "overlap", threshold: float | None = None,
          model=None, tok=None) -> list[Segment]:
    if rule == "overlap":
        return label_overlap(segments, question, OVERLAP_THRESHOLD if threshold is None else threshold)
    if rule == "entropy":
        if model is None or tok is None:
            raise ConfigError("the entropy rule needs a reference causal LM (`segment_model`)")
        return label_entropy(segments, question, model, tok, ENTROPY_THRESHOLD if threshold is None else threshold)
    raise ConfigError(f"unknown segment labelling rule {rule!r}; use 'overlap' or 'entropy'")


def statistics(labelled: Sequence[Sequence[Segment]]) -> dict:
    """Segments per rationale, ES/AS shares and mean length (words) per kind."""
    segs = [s for r in labelled for s in r]
    n = len(segs)
    out: dict = {"rationales": len(labelled), "segments": n,
                 "segments_per_rationale": round(n / len(labelled), 2) if labelled else 0.0,
                 "no_segment": sum(1 for r in labelled if not r)}
    for kind in (ES, AS):
        sel = [s for s in segs if s.kind == kind]
        out[f"{kind.lower()}_share"] = round(len(sel) / n, 4) if n else 0.0
        out[f"{kind.lower()}_mean_words"] = round(sum(len(s.text.split()) for s in sel) / len(sel), 2) if sel else 0.0
    return out
