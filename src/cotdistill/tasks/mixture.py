"""Task mixtures (the CoT Collection's multi-task CoT tuning): one run, one student, many tasks.

Each entry of `task.mixture` is a task config of its own (any source but another mixture), loaded
with its own split. Its examples are tagged `metadata.mixture = NAME` and get ids `NAME/ID`, so
ids stay unique across tasks and every stage (teacher, curation, evaluation, report) can tell
the tasks apart. `cap` keeps a random sample of a task's training examples; `weight` repeats
them (copies carry `metadata.copy_of`, so the validation split never holds a copy of a training
question). The test split of every task is kept whole (its own `n_test_max` caps it).
"""
from __future__ import annotations

import random
from typing import Callable

from ..errors import DataError
from .schema import Example

TAG = "mixture"  # metadata key naming an example's task within the mixture
COPY = "copy_of"  # metadata key of a weighted copy: the id of the example it repeats


def task_of(ex: Example | dict) -> str | None:
    meta = ex.metadata if isinstance(ex, Example) else ex.get("metadata", {})
    return meta.get(TAG)


def sample_in_order(examples: list[Example], n: int, rng: random.Random) -> list[Example]:
    """`n` examples drawn at random with `rng`, kept in their original order."""
    keep = set(rng.sample(range(len(examples)), n))
    return [e for i, e in enumerate(examples) if i in keep]


def load_mixture(cfg, load_task: Callable) -> tuple[list[Example], list[Example]]:
    """The mixture's examples; `load_task` loads one entry's task (the caller's loader: an entry may
    be of any source)."""
    train: list[Example] = []
    test: list[Example] = []
    for i, entry in enumerate(cfg.mixture):
        name = entry.label
        try:
            tr, te = load_task(entry.task)
        except DataError as e:
            raise DataError(f"task.mixture[{i}] ({name}): {e}") from None
        rng = random.Random(f"{cfg.seed}/{name}")
        if entry.cap and entry.cap < len(tr):
            tr = sample_in_order(tr, entry.cap, rng)
        tr = [_tag(e, name) for e in tr]
        train += _weighted(tr, entry.weight, rng)
        test += [_tag(e, name) for e in te]
    return train, test


def _tag(ex: Example, name: str) -> Example:
    return ex.model_copy(update={"id": f"{name}/{ex.id}", "metadata": {**ex.metadata, TAG: name}})


def _weighted(examples: list[Example], weight: float, rng: random.Random) -> list[Example]:
    """The training examples a task contributes at `weight`: 2.5 -> every example twice and a
    random half of them a third time; 0.5 -> a random half, once."""
    whole, frac = int(weight), weight - int(weight)
    if whole == 0:
        return sample_in_order(examples, max(1, round(weight * len(examples))), rng)
    out = list(examples)
    for k in range(2, whole + 1):
        out += [_copy(e, k) for e in examples]
    if frac > 0:
        out += [_copy(e, whole + 1) for e in rng.sample(examples, round(frac * len(examples)))]
    return out


def _copy(ex: Example, k: int) -> Example:
    return ex.model_copy(update={"id": f"{ex.id}~{k}", "metadata": {**ex.metadata, COPY: ex.id}})
