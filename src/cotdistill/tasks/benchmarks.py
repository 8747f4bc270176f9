"""The 12 reasoning benchmarks of Fine-tune-CoT / Zero-shot-CoT, read from their original files
(as published in kojima-takeshi188/zero_shot_cot), and the official Fine-tune-CoT splits.

Sample indices in the official split files index the benchmark in file order; GSM8K, AQuA and
CommonsenseQA are indexed over train followed by test/dev.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import DataError
from ..io import read_json, read_jsonl
from .files import load_gsm8k
from .schema import Example, choice_letters, format_choices

AQUA_TRAIN_SIZE = 97467  # the AQuA-RAT train split precedes test in the official split indices


def _mk(task: str, i: int, q: str, a, kind: str, where: str, choices=None, **meta) -> Example:
    return Example.parse(
        {"id": f"{task}-{i}", "question": q.strip(), "answer": str(a), "kind": kind, "choices": choices,
         "metadata": {"task": task, "index": i, **meta}},
        where,
    )


def _math_json(task: str, rel: str, qkey: str = "sQuestion"):
    def load(root: Path) -> list[Example]:
        path = root / rel
        data = read_json(path)
        out = []
        for i, r in enumerate(data):
            try:
                out.append(_mk(task, i, r[qkey], r["lSolutions"][0], "number", f"{path}[{i}]"))
            except (KeyError, IndexError) as e:
                raise DataError(f"{path}[{i}]: missing field {e}") from None
        return out
    return load


def _svamp(root: Path) -> list[Example]:
    path = root / "SVAMP/SVAMP.json"
    out = []
    for i, r in enumerate(read_json(path)):
        body = r["Body"].strip()
        q = body + ("" if body.endswith(".") else " ") + " " + r["Question"].strip()
        out.append(_mk("svamp", i, " ".join(q.split()), r["Answer"], "number", f"{path}[{i}]"))
    return out


def _gsm8k(root: Path) -> list[Example]:
    train = root.parent / "gsm8k/train.jsonl"  # the shared data folder keeps train beside reasoning/
    parts = ([*load_gsm8k(train)] if train.exists() else []) + load_gsm8k(root / "grade-school-math/test.jsonl")
    return [e.model_copy(update={"id": f"gsm8k-{i}", "metadata": {**e.metadata, "task": "gsm8k", "index": i}})
            for i, e in enumerate(parts)]


def _aqua(root: Path) -> list[Example]:
    path = root / "AQuA/test.json"  # JSON Lines despite the name
    out = []
    for lineno, r in read_jsonl(path):
        opts = [o.split(")", 1)[1] if ")" in o else o for o in r["options"]]
        q = r["question"] + " " + format_choices(opts)
        out.append(_mk("aqua", AQUA_TRAIN_SIZE + lineno - 1, q, r["correct"], "choice", f"{path}:{lineno}",
                       choices=opts, human_rationale=r.get("rationale")))
    return out


def _csqa(root: Path) -> list[Example]:
    out = []
    for fname in ("train_rand_split.jsonl", "dev_rand_split.jsonl"):
        path = root / "CommonsenseQA" / fname
        for lineno, r in read_jsonl(path):
            opts = [c["text"] for c in r["question"]["choices"]]
            q = r["question"]["stem"] + " " + format_choices(opts)
            out.append(_mk("commonsense_qa", len(out), q, r["answerKey"], "choice", f"{path}:{lineno}", choices=opts))
    return out


def _bigbench_mc(task: str, rel: str):
    def load(root: Path) -> list[Example]:
        path = root / rel
        out = []
        for i, r in enumerate(read_json(path)["examples"]):
            opts = [k.rstrip(".") for k in r["target_scores"]]
            gold = [k for k, v in r["target_scores"].items() if v == 1]
            if len(gold) != 1:
                raise DataError(f"{path} examples[{i}]: expected exactly one target score of 1")
            letter = choice_letters(len(opts))[list(r["target_scores"]).index(gold[0])]
            q = r["input"].strip() + " " + format_choices(opts)
            out.append(_mk(task, i, q, letter, "choice", f"{path} examples[{i}]", choices=opts))
        return out
    return load


def _strategyqa(root: Path) -> list[Example]:
    path = root / "StrategyQA/task.json"
    out = []
    for i, r in enumerate(read_json(path)["examples"]):
        gold = "yes" if r["target_scores"].get("Yes") == 1 else "no"
        out.append(_mk("strategy_qa", i, r["input"], gold, "yes_no", f"{path} examples[{i}]",
                       human_rationale=r.get("target")))
    return out


def _examples_json(task: str, rel: str, kind: str):
    def load(root: Path) -> list[Example]:
        path = root / rel
        return [_mk(task, i, r["question"], r["answer"], kind, f"{path} examples[{i}]")
                for i, r in enumerate(read_json(path)["examples"])]
    return load


BENCHMARKS: dict[str, Callable[[Path], list[Example]]] = {
    "single_eq": _math_json("single_eq", "SingleEq/questions.json"),
    "addsub": _math_json("addsub", "AddSub/AddSub.json"),
    "multiarith": _math_json("multiarith", "MultiArith/MultiArith.json"),
    "gsm8k": _gsm8k,
    "aqua": _aqua,
    "svamp": _svamp,
    "commonsense_qa": _csqa,
    "strategy_qa": _strategyqa,
    "date_understanding": _bigbench_mc("date_understanding", "Bigbench_Date/task.json"),
    "tracking_shuffled_objects": _bigbench_mc("tracking_shuffled_objects", "Bigbench_object_tracking/task.json"),
    "coin_flip": _examples_json("coin_flip", "coin_flip/coin_flip.json", "yes_no"),
    "last_letter_concatenation": _examples_json("last_letter_concatenation", "last_letters/last_letters.json", "text"),
}


def _shared_loaders():
    from . import flan, palm, understanding

    loaders = {n: (lambda root, split, n=n: understanding.load_understanding(n, root, split))
               for n in understanding.UNDERSTANDING}
    loaders.update({f"flan_cot_{f}": (lambda root, split, f=f: flan.load_flan_cot(f, root, split))
                    for f in flan.FAMILIES})
    return {**loaders, palm.NAME: palm.load_svamp_palm}


# Data sets with their own folders and splits in the shared data folder (not under reasoning/).
SHARED_LOADERS: dict[str, Callable[[Path, str], list[Example]]] = _shared_loaders()


def shared_folder(name: str) -> str:
    """The folder under `data_dir` a benchmark reads (reasoning/ for the Fine-tune-CoT twelve)."""
    from . import flan, palm, understanding

    if name.startswith("flan_cot_"):
        return flan.FOLDER
    return {**understanding.FOLDERS, palm.NAME: palm.FOLDER}.get(name, "reasoning")


def load_benchmark(name: str, data_dir: str | Path, split: str = "all") -> list[Example]:
    """Load a benchmark from `data_dir` (the folder holding `reasoning/` and `finetune-cot/`).
    `split` is "all", or "train"/"test" of the official Fine-tune-CoT split."""
    from ..registry import unknown_name

    if name in SHARED_LOADERS:
        load = SHARED_LOADERS[name]
        if split == "all":
            return load(Path(data_dir), "train") + load(Path(data_dir), "test")
        if split not in ("train", "test"):
            raise DataError(f"{name}: split must be 'all', 'train' or 'test', got {split!r}")
        return load(Path(data_dir), split)
    if name not in BENCHMARKS:
        raise unknown_name("benchmark", name, [*BENCHMARKS, *SHARED_LOADERS])
    root = Path(data_dir)
    if not (root / "reasoning").is_dir():
        raise DataError(f"{root}: no 'reasoning/' folder; point `data_dir` at the folder holding the benchmarks")
    examples = BENCHMARKS[name](root / "reasoning")
    if split == "all":
        return examples
    if split not in ("train", "test"):
        raise DataError(f"benchmark split must be 'all', 'train' or 'test', got {split!r}")
    return select_split(examples, official_split(name, root)[split], f"{name} {split}")


def official_split(name: str, data_dir: str | Path) -> dict[str, list[int]]:
    path = Path(data_dir) / "finetune-cot/splits" / f"{name}__default.json"
    split = read_json(path)
    if not isinstance(split, dict) or not {"train", "test"} <= split.keys():
        raise DataError(f"{path}: expected an object with 'train' and 'test' index lists")
    return split


def select_split(examples: list[Example], indices: list[int], what: str) -> list[Example]:
    by_index = {e.metadata.get("index", i): e for i, e in enumerate(examples)}
    missing = [i for i in indices if i not in by_index]
    if missing:
        raise DataError(
            f"{what}: {len(missing)} split indices (e.g. {missing[:3]}) are not in the loaded files "
            f"(indices {min(by_index)}..{max(by_index)}); is part of the data set missing?"
        )
    return [by_index[i] for i in indices]
