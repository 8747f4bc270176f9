"""Tasks: the example schema, answer kinds and extraction, loaders, synthetic generators."""
from __future__ import annotations

import random

from ..errors import DataError
from .schema import AnswerKind, Example

__all__ = ["AnswerKind", "Example", "load_task"]


def _cap(examples: list[Example], n: int) -> list[Example]:
    return examples[:n] if n else examples


def load_task(cfg) -> tuple[list[Example], list[Example]]:
    """(train, test) examples for a TaskConfig. Test questions never appear in train."""
    from .benchmarks import load_benchmark
    from .files import load_file, load_hf_dataset
    from .synthetic import make_synthetic

    if cfg.source == "synthetic":
        task = make_synthetic(cfg.name, cfg.params)
        test = task.generate(cfg.n_test, seed=cfg.seed + 10_000)
        train = task.generate(cfg.n_train, seed=cfg.seed, exclude={e.question for e in test})
    elif cfg.source == "benchmark":
        train = _cap(load_benchmark(cfg.name, cfg.data_dir, "train"), cfg.n_train)
        test = load_benchmark(cfg.name, cfg.data_dir, "test")
    elif cfg.source == "file":
        allx = load_file(cfg.path, cfg.kind, cfg.columns)
        if cfg.test_path:
            train, test = allx, load_file(cfg.test_path, cfg.kind, cfg.columns)
        else:
            if len(allx) <= cfg.n_test:
                raise DataError(f"{cfg.path}: {len(allx)} examples, not enough to hold out task.n_test={cfg.n_test}")
            rng = random.Random(cfg.seed)
            allx = allx[:]
            rng.shuffle(allx)
            train, test = allx[cfg.n_test:], allx[: cfg.n_test]
        train = _cap(train, cfg.n_train)
    else:
        train = _cap(load_hf_dataset(cfg.name, cfg.kind, cfg.hf_train_split, cfg.columns), cfg.n_train)
        test = load_hf_dataset(cfg.name, cfg.kind, cfg.hf_test_split, cfg.columns)
    if not train:
        raise DataError(f"task {cfg.name!r}: the training set is empty")
    if not test:
        raise DataError(f"task {cfg.name!r}: the test set is empty")
    ids = [e.id for e in train + test]
    if len(set(ids)) != len(ids):
        raise DataError(f"task {cfg.name!r}: example ids are not unique across train and test")
    return train, test
