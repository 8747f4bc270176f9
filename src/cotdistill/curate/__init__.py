"""Curation: keep teacher rationales whose answer matches gold, dedupe, and count every drop."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..tasks.answers import abstains, extract, is_correct, normalize_gold


@dataclass
class CurationStats:
    questions: int = 0
    samples: int = 0
    kept: int = 0
    questions_kept: int = 0
    correct: int = 0  # samples whose answer matched gold (before dedupe / truncation filters)
    dropped: Counter = field(default_factory=Counter)  # reason -> count

    def as_dict(self) -> dict:
        return {
            "questions": self.questions, "samples": self.samples, "kept": self.kept,
            "questions_with_a_kept_rationale": self.questions_kept,
            "teacher_accuracy": round(100 * self.correct / self.samples, 2) if self.samples else None,
            "dropped": dict(self.dropped),
        }


def teacher_answer(rec: dict, answer_source: str = "stage2") -> str | None:
    """The teacher's answer: first candidate of the stage-2 completion (Zero-shot-CoT's answer
    read-out), falling back to the last candidate of the rationale when stage 2 has none. A
    stage 2 that hedges ("it depends") is an abstention: the rationale is not searched for a word
    that happens to match."""
    kind, choices = rec["kind"], rec.get("choices")
    if answer_source == "stage2" and rec.get("answer_text"):
        if abstains(rec["answer_text"]):
            return None
        got = extract(rec["answer_text"], kind, choices, position="first")
        if got is not None:
            return got
    return extract(rec["rationale"], kind, choices, position="last")


MIN_REASONING_WORDS = 8


def states_answer_only(rationale: str, gold: str, kind, choices=None) -> bool:
    """An answer-given rationale that only states the answer: its first sentence already states
    the gold answer and fewer than MIN_REASONING_WORDS words follow the answer ("It's simple,
    here's my answer: X."). Reasoning that ends with the answer, or that states it and then
    explains it at some length ("The answer is 7 because ..."), is kept."""
    from ..segments import split_segments

    sents = split_segments(rationale)
    if not sents:
        return False
    words = sents[0].split()
    # where the first sentence states the gold answer (the first prefix of it that holds the answer)
    at = next((i for i in range(len(words))
               if is_correct(extract(" ".join(words[:i + 1]), kind, choices, position="last"), gold, kind)), None)
    if at is None:
        return False
    following = words[at + 1:] + " ".join(sents[1:]).split()
    return len(following) < MIN_REASONING_WORDS


def teacher_abstained(rec: dict, answer_source: str = "stage2") -> bool:
    texts = [rec.get("answer_text") or ""] if answer_source == "stage2" else []
    return any(abstains(t) for t in [*texts, rec["rationale"]] if t)


@dataclass
class Decision:
    """What curation did with one teacher record: kept, or the reason it was dropped."""

    kept: bool
    reason: str | None  # empty_rationale, answer_up_front, abstained, no_answer_found, wrong_answer,
    #                     truncated, duplicate; None when kept
    pred: str | None  # the teacher's answer as read
    correct: bool


def decisions(records: list[dict], *, dedupe: bool = True, keep_truncated: bool = False,
              answer_source: str = "stage2") -> list[Decision]:
    """One decision per record, in order (a duplicate is the second of two identical rationales)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in records:
        given = r.get("prompt_style") == "answer_given"  # the teacher saw the answer: read it from the rationale
        pred = teacher_answer(r, "rationale" if given else answer_source)
        gold = normalize_gold(r["answer"], r["kind"], r.get("choices"))
        ok = is_correct(pred, gold, r["kind"])
        reason = None
        if not r["rationale"].strip():
            reason = "empty_rationale"
        elif given and ok and states_answer_only(r["rationale"], gold, r["kind"], r.get("choices")):
            reason = "answer_up_front"
        elif pred is None:
            reason = "abstained" if teacher_abstained(r, answer_source) else "no_answer_found"
        elif not ok:
            reason = "wrong_answer"
        elif r.get("finish_reason") == "length" and not keep_truncated:
            reason = "truncated"
        elif dedupe and (r["id"], " ".join(r["rationale"].split())) in seen:
            reason = "duplicate"
        else:
            seen.add((r["id"], " ".join(r["rationale"].split())))
        out.append(Decision(reason is None, reason, pred, ok))
    return out


def curate(records: list[dict], *, dedupe: bool = True, keep_truncated: bool = False,
           answer_source: str = "stage2") -> tuple[list[dict], CurationStats]:
    """Returns kept records (each with `pred` set) and statistics with a reason for each drop."""
    st = CurationStats(questions=len({r["id"] for r in records}), samples=len(records))
    kept = []
    for r, d in zip(records, decisions(records, dedupe=dedupe, keep_truncated=keep_truncated,
                                       answer_source=answer_source)):
        st.correct += d.correct
        if d.kept:
            kept.append({**r, "pred": d.pred})
        else:
            st.dropped[d.reason] += 1
    st.kept = len(kept)
    st.questions_kept = len({r["id"] for r in kept})
    return kept, st
