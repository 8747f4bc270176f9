"""Tasks: the example schema, answer kinds and extraction, loaders, synthetic generators."""
from __future__ import annotations

import random

from ..errors import DataError
from .mixture import sample_in_order
from .schema import AnswerKind, Example

__all__ = ["AnswerKind", "Example", "load_task"]


def _cap(examples: list[Example], n: int, cfg=None) -> list[Example]:
    """At most `n` examples (0 = all): the first ones, or with `task.sample: random` a sample
    drawn with `task.seed`, kept in file order."""
    if not n or n >= len(examples):
        return examples
    if cfg is not None and cfg.sample == "random":
        return sample_in_order(examples, n, random.Random(cfg.seed))
    return examples[:n]


def load_task(cfg) -> tuple[list[Example], list[Example]]:
    """(train, test) examples for a TaskConfig. Test questions never appear in train."""
    from .benchmarks import load_benchmark
    from .files import load_file, load_hf_dataset
    from .synthetic import make_synthetic

    if cfg.source == "mixture":
        from .mixture import load_mixture

        train, test = load_mixture(cfg, load_task)
    elif cfg.source == "synthetic":
        task = make_synthetic(cfg.name, cfg.params)
        test = task.generate(cfg.n_test, seed=cfg.seed + 10_000)
        train = task.generate(cfg.n_train, seed=cfg.seed, exclude={e.question for e in test})
    elif cfg.source == "benchmark":
        train = _cap(load_benchmark(cfg.name, cfg.data_dir, "train"), cfg.n_train, cfg)
        test = _cap(load_benchmark(cfg.name, cfg.data_dir, "test"), cfg.n_test_max, cfg)
    elif cfg.source == "release":
        from .release import load_release

        train = _cap(load_release(cfg.name, cfg.path, cfg.data_dir, "train"), cfg.n_train, cfg)
        test = _cap(load_release(cfg.name, cfg.path, cfg.data_dir, "test"), cfg.n_test_max, cfg)
    elif cfg.source in ("file", "bigbench"):
        if cfg.source == "bigbench":  # no official split: test questions are held out as for a file
            from .bigbench import load_bigbench

            allx = load_bigbench(cfg.path)
        else:
            allx = load_file(cfg.path, cfg.kind, cfg.columns)
        if cfg.test_path:
            train, test = allx, _cap(load_file(cfg.test_path, cfg.kind, cfg.columns), cfg.n_test_max, cfg)
        else:
            if len(allx) <= cfg.n_test:
                raise DataError(f"{cfg.path}: {len(allx)} examples, not enough to hold out task.n_test={cfg.n_test}")
            rng = random.Random(cfg.seed)
            allx = allx[:]
            rng.shuffle(allx)
            train, test = allx[cfg.n_test:], allx[: cfg.n_test]
        train = _cap(train, cfg.n_train, cfg)
    else:
        train = _cap(load_hf_dataset(cfg.name, cfg.kind, cfg.hf_train_split, cfg.columns), cfg.n_train, cfg)
        test = _cap(load_hf_dataset(cfg.name, cfg.kind, cfg.hf_test_split, cfg.columns), cfg.n_test_max, cfg)
    name = cfg.display_name
    if not train:
        raise DataError(f"task {name!r}: the training set is empty")
    if not test:
        raise DataError(f"task {name!r}: the test set is empty")
    _check_unique(train, test, cfg)
    return train, test


def _check_unique(train: list[Example], test: list[Example], cfg) -> None:
    """Ids key the teacher cache, rationales and predictions: one id, one question."""
    seen: set[str] = set()
    for split, exs in (("train", train), ("test", test)):
        for e in exs:
            if e.id in seen:
                where = {"file": f"{cfg.path} and {cfg.test_path}" if cfg.test_path else cfg.path,
                         "hf": f"{cfg.name} splits {cfg.hf_train_split!r} and {cfg.hf_test_split!r}"}.get(cfg.source, cfg.name)
                raise DataError(f"task {cfg.display_name!r}: id {e.id!r} occurs twice (second time in the {split} "
                                f"split; data: {where}); ids must be unique across train and test")
            seen.add(e.id)
