"""How faithfully a student's rationales copy their question, for Coin Flip and Last Letter
predictions: the figures behind the README's "what the students write".

    python bench/copying.py runs/replay-minilm/students/coin_flip/ft_cot/predictions.jsonl [...]

Per predictions file (the task is told from the questions): names written, names that are in the
question; Coin Flip also the rationales whose flip / no-flip sequence matches the question's and
those with names and flips both right (and how many of those answer right); Last Letter the
copied names given their right last letter, and the rationales with every name right. Prints one
line per file; `--json` prints the figures as JSON.
Last Letter with `--train FILE` (the run's data/train.jsonl or curated.jsonl) also counts the
question names that occur in a training question, and with `--tokenizer DIR` (a model folder) the
names that are a single token: a student cannot have seen those spelt.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

FLIP = re.compile(r"(\w+) (flips|does not flip) the coin", re.I)
QUOTED = re.compile(r'"(.*)"')
LETTER_OF = re.compile(r'last letter of "\s*([^"]+?)\s*"(?: is "\s*([^"]*?)\s*")?', re.I)


def quoted_words(question: str) -> list[str]:
    """The lower-cased words a Last Letter question quotes (none when it quotes nothing)."""
    m = QUOTED.search(question)
    return [w.lower() for w in m.group(1).split()] if m else []


def coin_flip(preds: list[dict]) -> dict:
    def seq(text: str) -> list[tuple[str, bool]]:
        return [(n.lower(), f.lower() == "flips") for n, f in FLIP.findall(text)]

    out = {"task": "coin_flip", "questions": len(preds), "correct": 0, "names_written": 0, "names_copied": 0,
           "flips_right": 0, "names_and_flips_right": 0, "correct_when_both_right": 0}
    for p in preds:
        q, g = seq(p["question"]), seq(p["generation"].split("-->")[0])
        names = {n for n, _ in q}
        out["correct"] += bool(p["correct"])
        out["names_written"] += len(g)
        out["names_copied"] += sum(n in names for n, _ in g)
        out["flips_right"] += [f for _, f in g] == [f for _, f in q]
        both = g == q
        out["names_and_flips_right"] += both
        out["correct_when_both_right"] += both and bool(p["correct"])
    return out


def last_letter(preds: list[dict]) -> dict:
    # the two faults apart: copying a name, and spelling it (its last letter) once copied
    out = {"task": "last_letter", "questions": len(preds), "correct": 0, "names_written": 0, "names_copied": 0,
           "all_names_right": 0, "letters_right_of_copied": 0}
    for p in preds:
        words = quoted_words(p["question"])
        pairs = [(w.lower(), letter.lower()) for w, letter in LETTER_OF.findall(p["generation"])]
        got = [w for w, _ in pairs]
        out["correct"] += bool(p["correct"])
        out["names_written"] += len(got)
        out["names_copied"] += sum(w in words for w in got)
        out["letters_right_of_copied"] += sum(w in words and letter == w[-1] for w, letter in pairs)
        out["all_names_right"] += got == words
    return out


def spelling_exposure(preds: list[dict], train: Path | None, tokenizer: str | None) -> dict:
    names = [w for p in preds for w in quoted_words(p["question"])]
    out = {"question_names": len(names)}
    if train:
        seen = {w for line in train.read_text().splitlines() if line.strip()
                for w in quoted_words(json.loads(line)["question"])}
        out["names_in_training_questions"] = sum(n in seen for n in names)
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
        out["single_token_names"] = sum(len(tok.tokenize(n)) == 1 for n in names)
    return out


def measure(path: Path, train: Path | None = None, tokenizer: str | None = None) -> dict:
    preds = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
            preds.append({k: rec[k] for k in ("question", "generation", "correct")})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}:{n}: not a prediction record with question, generation, correct ({e})")
    if not preds:
        raise SystemExit(f"{path}: no predictions")
    if all(FLIP.search(p["question"]) for p in preds):
        return coin_flip(preds)
    if all("last letter" in p["question"].lower() and QUOTED.search(p["question"]) for p in preds):
        return {**last_letter(preds), **(spelling_exposure(preds, train, tokenizer) if train or tokenizer else {})}
    raise SystemExit(f"{path}: neither Coin Flip nor Last Letter questions")


def line(path: Path, r: dict) -> str:
    head = f"{path}: {r['task']}, correct {r['correct']}/{r['questions']}, names copied {r['names_copied']}/{r['names_written']}"
    if r["task"] == "coin_flip":
        return (f"{head}, flip sequence right {r['flips_right']}, names and flips right {r['names_and_flips_right']} "
                f"(answered right: {r['correct_when_both_right']})")
    return (f"{head} (last letter right for {r['letters_right_of_copied']} of them), "
            f"every name right {r['all_names_right']}"
            + (f"; of the {r['question_names']} question names, {r['names_in_training_questions']} in a training "
               "question" if "names_in_training_questions" in r else "")
            + (f", {r['single_token_names']} a single token" if "single_token_names" in r else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("predictions", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--train", type=Path, help="Last Letter: training questions (JSONL) to count names seen in")
    ap.add_argument("--tokenizer", help="Last Letter: a tokenizer folder to count single-token names with")
    args = ap.parse_args(argv)
    missing = [str(p) for p in [*args.predictions, *([args.train] if args.train else [])] if not p.is_file()]
    if missing:
        print(f"no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = {str(p): measure(p, args.train, args.tokenizer) for p in args.predictions}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for p, r in results.items():
            print(line(Path(p), r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
