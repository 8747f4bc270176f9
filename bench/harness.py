"""What every bench shares, so that each bench is only its measurement:

- the command line: `--out DIR`, `--quick` (a smoke run: every part runs, on a few questions and
  steps), and where a bench has them `--student NAME` (a preset, a `pretrained:` name or a model
  folder; `--layers K` keeps K of a packaged student's layers), `--data DIR`, `--steps N`,
  `--batch-size N`, `--seeds N`;
- run configs built as data (nested sections, merged and validated like a YAML file), not strings;
- OUT/summary.json with `bars: {NAME: {"value", "bar", "met"}}`, written whole (a long bench writes
  it after each part, so an interrupted run keeps what it finished), and the bars printed last;
- pooling a method's figures over seeds: the accuracy is the mean of the seeds', the interval is
  over every answer, and each seed's accuracy is listed with their spread.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

DATA = Path("../shared/data")
# The MiniLM warm starts' rows of some benches were measured with 3 of their 6 layers.
MINILM_LAYERS = 3
STUDENT_HELP = "a preset (preset:tiny, from scratch), pretrained:NAME (weights from a package) or a model folder"


def parser(doc: str, name: str, *, student: str | None = None, data: bool = False, steps: int | None | bool = False,
           batch_size: int | None = None, seeds: bool = False, quick: str = "smoke run",
           minilm_layers: bool = False) -> argparse.ArgumentParser:
    """The bench's command line with the shared flags it uses; `doc`'s first paragraph describes it.
    `minilm_layers`: a MiniLM warm start keeps MINILM_LAYERS of its layers unless --layers says otherwise
    (the setting this bench's MiniLM rows were measured with)."""
    ap = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    ap.add_argument("--out", type=Path, default=Path(f"runs/{name}"), help="output folder (summary.json, run folders)")
    ap.add_argument("--quick", action="store_true", help=quick)
    if student is not None:
        ap.add_argument("--student", default=student, help=STUDENT_HELP)
        ap.add_argument("--layers", type=int, default=None, help="pretrained:NAME students: keep this many layers "
                        + (f"(default: {MINILM_LAYERS} of a MiniLM warm start's 6, all of any other; 0: all)"
                           if minilm_layers else "(default: all)"))
        ap.set_defaults(minilm_layers=minilm_layers)
    if data:
        ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (benchmarks, teacher files)")
    if steps is not False:
        ap.add_argument("--steps", type=int, default=steps, help="optimizer steps of every trained student")
    if batch_size is not None:
        ap.add_argument("--batch-size", type=int, default=batch_size, help="training batch")
    if seeds:
        ap.add_argument("--seeds", type=int, default=1, help="repeat with seeds 0..N-1 and pool the figures")
    return ap


def parse(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    from cotdistill.progress import quiet_libraries

    args = ap.parse_args(argv)
    quiet_libraries()  # a bench's log holds our progress lines, not transformers' bars
    if getattr(args, "seeds", 1) < 1:
        ap.error("--seeds must be at least 1")
    if hasattr(args, "layers"):
        if args.layers is None and args.minilm_layers and args.student.startswith("pretrained:minilm"):
            args.layers = MINILM_LAYERS
        if args.layers == 0 or not args.student.startswith("pretrained:"):
            args.layers = None  # --layers 0: all of them; --layers picks layers of a packaged student only
    return args


def from_scratch(student: str) -> bool:
    return student.startswith("preset:")


def student_section(student: str, layers: int | None = None) -> dict:
    """The config's `student` section for `--student` and `--layers`."""
    return {"model": student, **({"layers": layers} if layers else {})}


def merge(*parts: dict) -> dict:
    """Nested sections merged left to right (a later value wins; sections merge key by key)."""
    out: dict = {}
    for part in parts:
        for k, v in part.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config(*parts: dict, overrides: list[str] | None = None):
    """A run config from nested sections, validated as a YAML file would be; `overrides` are a
    user's `--set key=value` flags on top."""
    from cotdistill.config import apply_overrides, validate_config

    data = merge(*parts)
    given = apply_overrides(data, overrides or [])
    return validate_config(data, "bench config", given)


def flags(sections: dict, prefix: str = "") -> list[str]:
    """Nested sections as `key.sub=value` flags, for the APIs that take a user's `--set` (unseen)."""
    out = []
    for k, v in sections.items():
        if isinstance(v, dict) and v:
            out += flags(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={json.dumps(v)}")
    return out


def bar(value: Any, target: Any, met: bool) -> dict:
    """One bar of summary.json: the measured value, the bar it is held to, and whether it is met."""
    return {"value": value, "bar": target, "met": bool(met)}


def read_summary(out: Path) -> dict:
    """OUT/summary.json of an earlier run of the bench, or {} (a bench that adds to its figures)."""
    path = Path(out) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_summary(out: Path, summary: dict) -> Path:
    """OUT/summary.json, whole or not at all; its bars must have the shared shape."""
    from cotdistill.io import write_json

    for name, b in summary.get("bars", {}).items():
        if not (isinstance(b, dict) and {"value", "bar", "met"} <= b.keys()):
            raise ValueError(f"bar {name!r} is not {{value, bar, met}}: {b!r}")
    return write_json(Path(out) / "summary.json", summary)


def print_table(heads: list[str], rows: list[list]) -> None:
    """Aligned columns: the first left-aligned, the others right-aligned; floats with 2 decimals
    unless already formatted as text."""
    cells = [[c if isinstance(c, str) else f"{c:,.2f}" if isinstance(c, float) else f"{c:,}" for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]

    def line(r):
        return " ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    print("\n" + line(heads))
    for r in cells:
        print(line(r))


def print_bars(bars: dict) -> None:
    if not bars:
        return
    print("\nBars")
    for name, b in bars.items():
        print(f"  {'MET    ' if b['met'] else 'NOT met'} {name}: {json.dumps(b['value'])} (bar {json.dumps(b['bar'])})")


def pool_seeds(rows: list[dict], preds: list[list[dict]], method: str) -> dict:
    """One method over seeds: its figures on every seed's answers pooled (the method's own figures
    too), each seed's accuracy, their sample standard deviation, and the step budget."""
    from cotdistill.evaluate import score
    from cotdistill.methods import get_method

    s = score(get_method(method), [p for ps in preds for p in ps])
    keys = ("accuracy", "ci95", "mean_generated_tokens", "seconds_per_100", "post_fraction", "by_mode")
    out = {k: v for k, v in s.items() if k in keys}
    accs = [r["accuracy"] for r in rows]
    out["seed_accuracies"] = accs
    mean = sum(accs) / len(accs)
    out["seed_sd"] = round(math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)), 2) if len(accs) > 1 else 0.0
    out["steps"] = rows[0]["steps"]
    return out


# Two-sided 95% quantiles of Student's t by degrees of freedom (seed counts benches use).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def paired_terms(a: dict, b: dict) -> tuple[float, float, int]:
    """Per-question correctness (id -> 0/1) of two students on the same questions: the mean of a - b
    over the questions both answered, the variance of that mean, and how many questions."""
    d = [a[i] - b[i] for i in sorted(a.keys() & b.keys())]
    mean = sum(d) / len(d)
    var = (sum((x - mean) ** 2 for x in d) / (len(d) - 1) if len(d) > 1 else 0.0) / len(d)
    return mean, var, len(d)


def correct_by_id(predictions: Path) -> dict:
    """Per-question correctness (id -> 0/1) of a predictions.jsonl, the input of paired()."""
    from cotdistill.io import read_jsonl_list

    return {p["id"]: int(p["correct"]) for p in read_jsonl_list(predictions)}


def paired_against(files: dict[str, Path], base: str) -> dict:
    """Each student's accuracy minus `base`'s, paired by test question, with its 95% interval
    (`files`: student -> predictions.jsonl; files not written are left out, and with no `base`
    file nothing is paired)."""
    got = {m: correct_by_id(f) for m, f in files.items() if f.exists()}
    return {m: paired(c, got[base]) for m, c in got.items() if m != base and base in got}


def paired(a: dict, b: dict) -> dict:
    """a minus b in accuracy points, paired by question, with its 95% interval (normal approximation)."""
    mean, var, n = paired_terms(a, b)
    diff, half = 100 * mean, 100 * 1.96 * math.sqrt(var)
    return {"difference": round(diff, 2), "ci95": [round(diff - half, 2), round(diff + half, 2)], "questions": n}


def seed_interval(values: list[float]) -> dict:
    """A figure measured once per seed (e.g. macro-F1, which does not pool over answers): the mean,
    the 95% t-interval of the mean and the sample standard deviation."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1)) if n > 1 else 0.0
    half = T975.get(n - 1, 1.96) * sd / math.sqrt(n) if n > 1 else 0.0
    return {"mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)], "sd": round(sd, 2)}


def device() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
