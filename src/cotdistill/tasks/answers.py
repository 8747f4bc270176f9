"""Answer extraction and normalisation: ONE implementation per answer kind.

Curation (is the teacher right?) and evaluation (is the student right?) both call `extract` and
`is_correct` from here, so the two stages can never disagree on what an answer is.

`candidates(text, kind)` lists every plausible answer in reading order, already normalised;
`extract` picks the first or last one. Normalised forms:
  number -> canonical decimal string ("1234", "-0.5", "0.75" for "3/4")
  choice -> upper-case letter ("B")
  yes_no -> "yes" / "no"
  text   -> lower-case, quotes and outer punctuation stripped, whitespace collapsed
  label  -> like text, path separators normalised to "/"
  math   -> the expression math-verify reads ("\\frac{1}{2}" from "\\boxed{\\frac{1}{2}}"); compared by
            value, so "0.5", "1/2" and "\\frac{2}{4}" are the same answer. math-verify is optional
            (pip install 'cotdistill[math]') and picks one answer per text by its own priorities
            (\\boxed{} first), so `first` and `last` agree for this kind.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Literal, Sequence

from .kinds import AnswerKind, choice_letters

Position = Literal["first", "last"]

# A number, possibly signed, with thousands separators, decimals or a fraction. The sign only
# counts when it is not a binary minus ("5-3" is 5 and 3, "-3" is minus three).
_NUM = re.compile(
    r"(?<![\w./])(?:(?P<sign>[-−+])(?=[$€£¥\d.]))?[$€£¥]?\s?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<dec>\.\d+)?"
    r"(?:\s?/\s?(?P<den>\d+))?(?![\w/])"
)
_NUM_WORD_SIGN = re.compile(r"(?<![\w])(?:negative|minus)\s+$", re.I)


def _canon_number(x: float | Fraction) -> str:
    f = float(x)
    if math.isfinite(f) and abs(f - round(f)) < 1e-9:
        return str(int(round(f)))
    return f"{f:.6f}".rstrip("0").rstrip(".")


def parse_number(s: str) -> str | None:
    """Normalise a gold or predicted number string; None when it holds no number."""
    found = number_candidates(s)
    return found[0] if found else None


def number_candidates(text: str) -> list[str]:
    out = []
    for m in _NUM.finditer(text):
        if not m.group("int") and not m.group("dec"):
            continue
        intpart = (m.group("int") or "0").replace(",", "")
        value = Fraction(intpart + (m.group("dec") or ""))
        if m.group("den"):
            den = int(m.group("den"))
            if den == 0:
                continue
            value = value / den
        neg = m.group("sign") in ("-", "−") or bool(_NUM_WORD_SIGN.search(text[: m.start()]))
        out.append(_canon_number(-value if neg else value))
    return out


# A lower-case letter is a choice only where nothing follows it but punctuation ("the answer is b.");
# "the answer is a car" names no option.
_LETTER = r"(?:([A-Z])\b(?![\w'])|([a-z])(?=\s*(?:$|[.,;:!?)\]\n])))"
_CHOICE_PATTERNS = [
    re.compile(r"\(([A-Za-z])\)"),  # (B) or (b)
    re.compile(r"(?<![\w(])([A-Z])\)"),  # B)
    re.compile(r"(?i:answer|option|choice)\s*(?:is|:)?\s*:?\s*\(?" + _LETTER),
    re.compile(r"^\s*\(?([A-Za-z])\)?\s*[.:]?\s*$"),  # the whole text is a bare letter (uncased students write "b")
    re.compile(r"^\s*([A-Z])\s*:\s"),  # "C: 01/02/2008" (the option letter leads)
]


def choice_candidates(text: str, choices: Sequence[str] | None = None) -> list[str]:
    """Letters in reading order. Only explicit option markers count, never "any capital letter"."""
    valid = set(choice_letters(len(choices))) if choices else None
    hits: list[tuple[int, str]] = []
    for pat in _CHOICE_PATTERNS:
        for m in pat.finditer(text):
            g = next(i for i in range(1, (pat.groups or 0) + 1) if m.group(i))
            hits.append((m.start(g), m.group(g).upper()))
    if choices:  # an option's own text spelled out ("05/01/2021") names its letter too
        low = text.lower()
        for letter, opt in zip(choice_letters(len(choices)), choices):
            o = opt.strip().lower()
            if len(o) >= 2:  # as a whole word: the option "no" is not in "know"
                for m in re.finditer(r"(?<!\w)" + re.escape(o) + r"(?!\w)", low):
                    hits.append((m.start(), letter))
    seen_pos: set[int] = set()
    out = []
    for pos, letter in sorted(hits):
        if pos in seen_pos or (valid is not None and letter not in valid):
            continue
        seen_pos.add(pos)
        out.append(letter)
    return out


_YES_NO = {"yes": "yes", "true": "yes", "correct": "yes", "no": "no", "false": "no", "incorrect": "no"}
_YN = r"(yes|no|true|false|correct|incorrect)"
_END = r"(?=\s*(?:$|[.,;:!?)\]\"'*\n\-–—]))"  # the word ends its clause: "no." or "no - the coin", not "no one"
_LEAD = r"^[\s\"'(*:\-]*"  # a stage-2 read-out often starts with the prompt's colon: ": Yes"
# An adverb of likelihood before the word still commits to it: "most likely no.", 'probably "no."'.
_LIKELY = (r"(?:(?:most|very|quite|highly|more than|in all)\s+)?(?:likely|likelihood|probably)|almost certainly"
           r"|certainly|definitely|surely|undoubtedly|presumably|absolutely|clearly")
# Where a yes/no is an answer, in reading order (the first group that matched is the word):
_YES_NO_PATTERNS = [
    # an answer phrase anywhere: "the answer is yes", "Answer: No", "the answer (Yes or No) is no"
    re.compile(r"\banswer\b(?:\s*\([^)]*\))?\s*(?:is|would be|will be|:)\s*:?\s*[\"'(*]*\s*" + _YN + r"\b", re.I),
    # a conclusion: "So, no.", "Therefore yes", ", so no" at the end of a clause
    re.compile(r"(?:^|[.!?,;:\n]\s*)(?:so|therefore|thus|hence|in conclusion|in summary|overall)\s*,?\s*"
               r"(?:the answer is\s*)?[\"'(*]*" + _YN + _END, re.I),
    # the answer text starts with the word: "Yes, the coin...", "No.", "True", "No it is not"
    re.compile(_LEAD + r"(yes)\b", re.I),
    # ... after an adverb of likelihood: "most likely yes, the trees ...", "probably no."
    re.compile(_LEAD + r"(?:" + _LIKELY + r")\s*,?\s*[\"'(*]*" + _YN + _END, re.I),
    re.compile(_LEAD + r"(no|true|false|correct|incorrect)" + _END, re.I),
    re.compile(_LEAD + r"(no)\s+(?=(?:it|this|that|the|he|she|they|we|i|because|since|as|not)\b)", re.I),
]

# Hedges: text that declines to answer. Where one appears and no answer phrase does, the text holds
# no answer, even if a number or a "no" occurs in it ("there is no definitive answer", "there are
# 2 possible answers"). Curation and evaluation count these as abstentions.
_ABSTAIN = re.compile(
    r"\bit (?:really )?depends\b|\bunclear\b|\b(?:cannot|can ?not|can't|could not|couldn't) (?:be )?"
    r"(?:determined?|known|answered|tell|say|know for sure)\b|\bimpossible to (?:tell|say|know|determine|answer)\b"
    r"|\b(?:not|in) ?(?:enough|sufficient|insufficient) information\b|\binsufficient information\b"
    r"|\bthere (?:is|'s) no (?:\w+ )?answer\b|\bno (?:definitive|definite|clear|single|correct|right) answer\b"
    r"|\b(?:two|2|several|multiple|many|more than one) (?:possible |different )?answers\b"
    r"|\b(?:i|we) (?:don't|do not) know\b|\bnot sure\b|\bnot possible to (?:tell|say|know|determine)\b"
    r"|^[\s\"'(*:\-]*(?:both )?yes (?:and|or) no\b",  # "yes and no", "both yes and no", "yes or no"
    re.I,
)
_ANSWER_PHRASE = re.compile(r"\banswer\b(?:\s*\([^)]*\))?\s*(?:is|would be|will be|:)(?!\s*(?:not|unclear|uncertain)\b)", re.I)


def abstains(text: str) -> bool:
    """The text hedges ("it depends", "cannot be determined", "there is no definitive answer",
    "2 possible answers") and commits to no answer with an answer phrase."""
    return bool(_ABSTAIN.search(text)) and not _ANSWER_PHRASE.search(text)


def yes_no_candidates(text: str) -> list[str]:
    """Only anchored yes/no words: an answer phrase, a conclusion, or the first word of the text.
    A "no" or "true" elsewhere in free text ("there is no way", "it is true that") is no answer."""
    hits: dict[int, str] = {}
    for pat in _YES_NO_PATTERNS:
        for m in pat.finditer(text):
            hits.setdefault(m.start(1), _YES_NO[m.group(1).lower()])
    return [hits[k] for k in sorted(hits)]


def normalize_text(s: str) -> str:
    s = s.strip().lower()
    s = re.sub(r"\s+", " ", s)
    return s.strip(" \"'`.,;:!?()[]{}“”‘’")


_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*", re.I)


def text_candidates(text: str) -> list[str]:
    """Quoted spans in reading order when there are any (teachers quote short answers:
    'is "yajo".'); otherwise the first line after the last 'answer is', or of the whole text."""
    quoted = [normalize_text(q) for q in re.findall(r"[\"“]([^\"”\n]+)[\"”]", text)]
    if any(quoted):
        return [q for q in quoted if q]
    m = list(_ANSWER_IS.finditer(text))
    tail = text[m[-1].end():] if m else text
    line = normalize_text(tail.strip().split("\n")[0]) if tail.strip() else ""
    return [line] if line else []


def normalize_label(s: str) -> str:
    out = re.sub(r"\s*[/>.]\s*", "/", normalize_text(s))
    # normalize_text strips outer punctuation; a directed relation keeps its closing bracket
    return out + ")" if out.count("(") > out.count(")") and s.rstrip().endswith(")") else out


MATH_VERIFY_MISSING = "answer kind 'math' compares expressions with math-verify: pip install 'cotdistill[math]'"
# Three letters in a row once LaTeX commands are taken out: prose ("the answer is"), not an expression.
_PROSE = re.compile(r"[a-zA-Z]{3,}")


def _math_verify():
    try:
        import math_verify
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError(MATH_VERIFY_MISSING) from None
    return math_verify


def _timeout() -> int | None:
    """math-verify's timeout is a SIGALRM, which only the main thread may set (the server scores
    answers in worker threads): elsewhere it runs without one."""
    import threading

    return 5 if threading.current_thread() is threading.main_thread() else None


def _math_parse(text: str) -> list:
    """math-verify's reading of `text`; a bare expression ("2\\sqrt{3}", "x^2+1") is read as LaTeX,
    which math-verify only does between delimiters."""
    mv, timeout = _math_verify(), _timeout()
    s = text.strip()
    bare = s and "$" not in s and "\\boxed" not in s and not _PROSE.search(re.sub(r"\\[a-zA-Z]+", "", s))
    if bare:
        found = mv.parse(f"${s}$", parsing_timeout=timeout)
        if found:
            return found
    return mv.parse(s, parsing_timeout=timeout)


def math_candidates(text: str) -> list[str]:
    found = _math_parse(text)
    return [found[-1]] if found and isinstance(found[-1], str) and found[-1].strip() else []


def candidates(text: str, kind: AnswerKind | str, choices: Sequence[str] | None = None) -> list[str]:
    """Every answer of `kind` in `text`, normalised, in reading order; none when the text abstains."""
    if abstains(text):
        return []
    return _candidates(text, AnswerKind(kind), choices)


def _candidates(text: str, kind: AnswerKind, choices: Sequence[str] | None) -> list[str]:
    if kind is AnswerKind.number:
        return number_candidates(text)
    if kind is AnswerKind.choice:
        return choice_candidates(text, choices)
    if kind is AnswerKind.yes_no:
        return yes_no_candidates(text)
    if kind is AnswerKind.label:
        return [normalize_label(c) for c in text_candidates(text)]
    if kind is AnswerKind.math:
        return math_candidates(text)
    return text_candidates(text)


def extract(
    text: str, kind: AnswerKind | str, choices: Sequence[str] | None = None, position: Position = "first"
) -> str | None:
    found = candidates(text, kind, choices)
    if not found:
        return None
    return found[0] if position == "first" else found[-1]


def normalize_gold(answer: str, kind: AnswerKind | str, choices: Sequence[str] | None = None) -> str:
    """Gold answers go through the same normaliser as predictions."""
    kind = AnswerKind(kind)
    if kind is AnswerKind.number:
        return parse_number(str(answer)) or str(answer).strip()
    if kind is AnswerKind.choice:
        a = str(answer).strip()
        for letter, opt in zip(choice_letters(len(choices or [])), choices or []):
            if a.lower() == opt.strip().lower() and len(a) > 1:  # the option's text instead of its letter
                return letter
        return a.strip("()").upper()
    if kind is AnswerKind.yes_no:
        c = yes_no_candidates(str(answer))
        return c[0] if c else normalize_text(str(answer))
    if kind is AnswerKind.label:
        return normalize_label(str(answer))
    if kind is AnswerKind.math:
        found = math_candidates(str(answer))
        return found[0] if found else str(answer).strip()
    return normalize_text(str(answer))


def gold_problem(answer: str, kind: AnswerKind | str, choices: Sequence[str] | None = None) -> str | None:
    """Why a gold answer is unusable under its kind (so it is rejected at load time, not scored
    as a question nobody can get right), or None."""
    kind = AnswerKind(kind)
    a = str(answer)
    if kind is AnswerKind.number:
        found = number_candidates(a)
        if len(found) != 1:
            return f"{a!r} is not a number" if not found else f"{a!r} holds {len(found)} numbers, not one"
    elif kind is AnswerKind.choice:
        if not choices:
            return ("a choice question needs its options: give the record a `choices` list (CSV: 'x|y|z'), "
                    "or write them in the question as '(A) x (B) y'")
        valid = choice_letters(len(choices))
        if normalize_gold(a, kind, choices) not in valid:
            return f"{a!r} is not one of the options {', '.join(valid)} (or their texts)"
    elif kind is AnswerKind.yes_no:
        if normalize_gold(a, kind) not in ("yes", "no"):
            return f"{a!r} is not yes/no (or true/false)"
    elif kind is AnswerKind.math:
        if not math_candidates(a):
            return f"{a!r} is not an expression math-verify can read"
    elif not normalize_gold(a, kind):
        return "the answer is empty"
    return None


def is_correct(pred: str | None, gold: str, kind: AnswerKind | str) -> bool:
    """`pred` must come from `extract`; `gold` from `normalize_gold`."""
    if pred is None:
        return False
    kind = AnswerKind(kind)
    if kind is AnswerKind.number:
        try:
            return math.isclose(float(pred), float(gold), rel_tol=1e-6, abs_tol=1e-6)
        except ValueError:
            return False
    if kind is AnswerKind.text:  # "n a o a" spells "naoa": spacing is not content
        return pred.replace(" ", "") == gold.replace(" ", "")
    if kind is AnswerKind.math and pred != gold:
        return bool(_math_verify().verify(_math_parse(gold), _math_parse(pred), timeout_seconds=_timeout()))
    return pred == gold
