"""SVAMP with REAL PaLM-540B rationales, as released by Distilling step-by-step (Hsieh et al.
2023): `dss-palm/svamp/svamp_{train,test}.json` (JSON Lines of `{"input", "label"}`, the label an
equation such as "( 84.0 / 2.0 )") and `llm/{split}_CoT_{i}.json` (JSON lists of raw few-shot
continuations, in the order of the split, cut at "The answer is" or at the next exemplar's "Q:"). The rationale lands in
`metadata.rationale`, read by `teacher.backend: dataset`."""
from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

from ..errors import DataError
from ..io import read_json, read_jsonl
from .schema import Example

NAME = "svamp_palm"
FOLDER = "dss-palm"
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def equation_value(text: str, where: str) -> float:
    """The value of an arithmetic expression of numbers and + - * / (no `eval`)."""
    def value(node):
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        raise DataError(f"{where}: field 'label': {text!r} is not an arithmetic expression of numbers and + - * /")

    try:
        return value(ast.parse(text.strip(), mode="eval"))
    except (SyntaxError, ZeroDivisionError) as e:
        raise DataError(f"{where}: field 'label': {text!r} cannot be computed ({e})") from None


def _plain(x: float) -> str:
    """1201560.0 -> '1201560', 0.25 -> '0.25' (no exponent: it would read as two numbers)."""
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:.6f}".rstrip("0").rstrip(".")


def load_svamp_palm(root: Path, split: str) -> list[Example]:
    base = root / FOLDER / "svamp"
    path = base / f"svamp_{split}.json"
    rows = list(read_jsonl(path))
    parts = sorted((base / "llm").glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    rationales = [r for p in parts for r in read_json(p)]
    if len(rationales) != len(rows):
        raise DataError(f"{base / 'llm'}: {len(rationales)} PaLM rationales for the {len(rows)} questions of {path}")
    out = []
    for (lineno, r), raw in zip(rows, rationales):
        where = f"{path}:{lineno}"
        if not isinstance(r.get("input"), str) or not isinstance(r.get("label"), str):
            raise DataError(f"{where}: fields 'input' and 'label' must be strings")
        # Cut where the answer is said, or where the few-shot continuation runs on into the next
        # exemplar without saying it (one of the 800 train rationales does).
        rationale = re.split(r"The answer is|\n\s*Q: ", raw, maxsplit=1)[0].strip() if isinstance(raw, str) else ""
        answer = equation_value(r["label"], where)
        out.append(Example.parse({"id": f"svamp_palm-{split}-{lineno - 1}", "question": r["input"].strip(),
                                  "answer": _plain(answer), "kind": "number",
                                  "metadata": {"task": NAME, "equation": r["label"], "rationale": rationale}}, where))
    return out
