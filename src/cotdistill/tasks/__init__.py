"""Tasks: the example schema, answer kinds and extraction, loaders, synthetic generators."""
from __future__ import annotations

from ..errors import DataError
from .schema import AnswerKind, Example

__all__ = ["AnswerKind", "Example", "load_task"]


def load_task(cfg) -> tuple[list[Example], list[Example]]:
    """(train, test) examples of a task source (tasks/sources.py). Test questions never appear in train."""
    train, test = cfg.load()
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
                raise DataError(f"task {cfg.display_name!r}: id {e.id!r} occurs twice (second time in the {split} "
                                f"split; data: {cfg.where()}); ids must be unique across train and test")
            seen.add(e.id)
