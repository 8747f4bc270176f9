"""Task sources: where a run's questions come from. Each source is one class holding its options
(a section of the config: `task: {source: file, path: ..., kind: ...}`), the preflight checks of
those options, its loader and the user data files it reads. A new source is a subclass with
`source: Literal["NAME"]`, registered with `@SOURCES.add`; the config's `task` accepts it at once.

`mixture` (several tasks, each with its own teacher) is composed in config.py, above the teachers.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..errors import CotDistillError, DataError
from ..io import path_problems
from ..registry import Registry
from ..settings import PlugIn
from .mixture import sample_in_order
from .schema import AnswerKind, Example

HELP = ("synthetic: built-in generator; benchmark: a Fine-tune-CoT benchmark from `data_dir`; release: that "
        "benchmark's questions as a released Fine-tune-CoT teacher file at `path` rendered them (for replaying it), "
        "official split; file: JSONL/JSON/CSV at `path`; hf: a Hugging Face dataset id or path; bigbench: a "
        "BIG-bench task folder (or task.json) at `path`; mixture: the tasks of `mixture`, one student for all")


class TaskSource(PlugIn):
    """The options every source has, and what a source must say about itself."""

    source: str
    name: str = Field("arithmetic", description="synthetic task or benchmark name")
    n_train: int = Field(2000, ge=0, description="synthetic: training questions; others: cap (0 = all)")
    n_test: int = Field(500, ge=1, description="synthetic: test questions; file without test_path: held out")
    n_test_max: int = Field(0, ge=0, description="benchmark/file/hf: evaluate on at most this many test questions "
                            "(0 = all)")
    sample: Literal["first", "random"] = Field("first", description="which questions n_train / n_test_max keep: the "
                                               "first ones in file order, or a random sample drawn with `seed`")
    seed: int = 0

    section, tag = "task", "source"

    @property
    def display_name(self) -> str:
        """What reports and messages call the data."""
        return self.name

    def problems(self) -> list[str]:
        """What is wrong with these options, found without loading anything expensive."""
        return []

    def load(self) -> tuple[list[Example], list[Example]]:
        """(train, test) before the caps and checks every source shares (tasks.load_task)."""
        raise NotImplementedError

    def files(self) -> list[Path]:
        """The user's own data files behind the task: the ones that may be edited in place between two
        runs into one folder (their digests are stamped in OUT/data/sources.json)."""
        return []

    def rationale_sources(self, teacher) -> list[tuple[str | None, str | None, Any, "TaskSource"]]:
        """(where, label, teacher, task) for each part of the data with its own teacher: the run's
        teacher on this task; a mixture's entries each with theirs. `where` prefixes messages and
        `label` picks the part's examples (None: all of them)."""
        return [(None, None, teacher, self)]

    def cap(self, examples: list[Example], n: int) -> list[Example]:
        """At most `n` examples (0 = all): the first ones, or with `task.sample: random` a sample
        drawn with `task.seed`, kept in file order."""
        if not n or n >= len(examples):
            return examples
        if self.sample == "random":
            return sample_in_order(examples, n, random.Random(self.seed))
        return examples[:n]

    def where(self) -> str:
        """Where the data comes from, for messages about its content."""
        return self.name


SOURCES: Registry[type[TaskSource]] = Registry("task source", key=lambda cls: cls.model_fields["source"].default)


def _kind_problems(kind: AnswerKind | None) -> list[str]:
    if kind == "math":
        import importlib.util

        from .answers import MATH_VERIFY_MISSING

        if importlib.util.find_spec("math_verify") is None:
            return [f"`task.kind`: {MATH_VERIFY_MISSING}"]
    return []


def _existing(*paths: str | None) -> list[Path]:
    files = [Path(p) / "task.json" if Path(p).is_dir() else Path(p) for p in paths if p]
    return [f for f in files if f.is_file()]


@SOURCES.add
class SyntheticTask(TaskSource):
    source: Literal["synthetic"] = "synthetic"
    params: dict[str, Any] = Field(default_factory=dict, description="synthetic task difficulty knobs")

    @model_validator(mode="after")
    def _some_training(self):
        if self.n_train == 0:
            raise ValueError("task.n_train must be at least 1 for a synthetic task")
        return self

    def problems(self) -> list[str]:
        from ..registry import unknown_name
        from .synthetic import SYNTHETIC, make_synthetic

        if self.name not in SYNTHETIC:
            return [f"`task.name`: {unknown_name('synthetic task', self.name, SYNTHETIC.names())}"]
        try:
            make_synthetic(self.name, self.params)
        except CotDistillError as e:
            return [f"`task.params`: {e}"]
        return []

    def load(self):
        from .synthetic import make_synthetic

        task = make_synthetic(self.name, self.params)
        test = task.generate(self.n_test, seed=self.seed + 10_000)
        return task.generate(self.n_train, seed=self.seed, exclude={e.question for e in test}), test


@SOURCES.add
class BenchmarkTask(TaskSource):
    source: Literal["benchmark"] = "benchmark"
    data_dir: str | None = Field(None, description="benchmark: folder holding reasoning/ and finetune-cot/")
    needs = ("data_dir",)

    def problems(self) -> list[str]:
        from ..registry import unknown_name
        from .benchmarks import BENCHMARKS, SHARED_LOADERS, shared_folder

        known = [*BENCHMARKS, *SHARED_LOADERS]
        found = [] if self.name in known else [f"`task.name`: {unknown_name('benchmark', self.name, known)}"]
        folder = shared_folder(self.name)
        if not Path(self.data_dir).is_dir():  # type: ignore[arg-type]  # needed, so set
            found.append(f"`task.data_dir`: {self.data_dir} is not a folder")
        elif not (Path(self.data_dir) / folder).is_dir():  # type: ignore[arg-type]
            found.append(f"`task.data_dir`: {self.data_dir} has no {folder}/ folder (where {self.name} lives)")
        return found

    def split(self, name: str) -> list[Example]:
        from .benchmarks import load_benchmark

        return load_benchmark(self.name, self.data_dir, name)

    def load(self):
        return self.cap(self.split("train"), self.n_train), self.cap(self.split("test"), self.n_test_max)


@SOURCES.add
class ReleaseTask(BenchmarkTask):
    source: Literal["release"] = "release"  # type: ignore[assignment]
    path: str | None = Field(None, description="release: a Fine-tune-CoT D_{task}.json teacher file")
    needs = ("data_dir", "path")

    def problems(self) -> list[str]:
        return path_problems(self.path, "task.path") + super().problems()

    def split(self, name: str) -> list[Example]:
        from .release import load_release

        return load_release(self.name, self.path, self.data_dir, name)

    def files(self) -> list[Path]:
        return _existing(self.path)


class _HeldOut(TaskSource):
    """Sources without an official split: the test questions are held out of one file."""

    path: str | None = Field(None, description="training (or all) examples")
    test_path: str | None = Field(None, description="held-out test examples (else carved from `path`)")

    def examples(self) -> list[Example]:
        raise NotImplementedError

    def test_file(self) -> list[Example]:
        raise NotImplementedError

    def load(self):
        allx = self.examples()
        if self.test_path:
            train, test = allx, self.cap(self.test_file(), self.n_test_max)
        else:
            if len(allx) <= self.n_test:
                raise DataError(f"{self.path}: {len(allx)} examples, not enough to hold out task.n_test={self.n_test}")
            allx = allx[:]
            random.Random(self.seed).shuffle(allx)
            train, test = allx[self.n_test:], allx[: self.n_test]
        return self.cap(train, self.n_train), test

    def files(self) -> list[Path]:
        return _existing(self.path, self.test_path)

    def where(self) -> str:
        return f"{self.path} and {self.test_path}" if self.test_path else str(self.path)


@SOURCES.add
class FileTask(_HeldOut):
    source: Literal["file"] = "file"
    kind: AnswerKind | None = Field(None, description="answer kind of the file's answers")
    columns: dict[str, str] = Field(default_factory=dict, description="{field: column} of the file")
    needs = ("path",)

    @model_validator(mode="after")
    def _kind(self):
        if self.kind is None:
            raise ValueError(f"task.source 'file' needs `task.kind` (one of {[k.value for k in AnswerKind]})")
        return self

    @property
    def display_name(self) -> str:
        return Path(self.path).stem if self.path else self.name

    def problems(self) -> list[str]:
        found = _kind_problems(self.kind) + path_problems(self.path, "task.path") + path_problems(self.test_path,
                                                                                                  "task.test_path")
        for field, p in (("task.path", self.path), ("task.test_path", self.test_path)):
            suffix = Path(p.removesuffix(".gz")).suffix.lower() if p else ""
            if p and suffix not in (".jsonl", ".json", ".csv"):
                found.append(f"`{field}`: {p}: unsupported file type {suffix!r}; use .jsonl, .json or .csv (optionally .gz)")
        return found

    def examples(self):
        from .files import load_file

        return load_file(self.path, self.kind, self.columns)

    def test_file(self):
        from .files import load_file

        return load_file(self.test_path, self.kind, self.columns)


@SOURCES.add
class BigBenchTask(_HeldOut):
    source: Literal["bigbench"] = "bigbench"
    needs = ("path",)
    shuffle_choices: bool = Field(True, description="shuffle each multiple-choice example's options (seeded by its "
                                  "id): task files often list the gold option first",
                                  json_schema_extra={"before_added": False})  # older runs kept the file order

    @property
    def display_name(self) -> str:
        p = Path(self.path)  # type: ignore[arg-type]  # needed, so set
        return f"bigbench:{p.parent.name if p.name == 'task.json' else p.name}"

    def problems(self) -> list[str]:
        if not Path(self.path).expanduser().exists():  # type: ignore[arg-type]
            return [f"`task.path`: {self.path} does not exist (a BIG-bench task folder or task.json was expected)"]
        return []

    def examples(self):
        from .bigbench import load_bigbench

        return load_bigbench(self.path, self.shuffle_choices)

    def test_file(self):
        from .bigbench import load_bigbench

        return load_bigbench(self.test_path, self.shuffle_choices)


@SOURCES.add
class HFTask(TaskSource):
    source: Literal["hf"] = "hf"
    kind: AnswerKind | None = Field(None, description="answer kind of the data set's answers")
    columns: dict[str, str] = Field(default_factory=dict, description="{field: column} of the data set")
    hf_train_split: str = "train"
    hf_test_split: str = "test"

    @model_validator(mode="after")
    def _kind(self):
        if self.kind is None:
            raise ValueError(f"task.source 'hf' needs `task.kind` (one of {[k.value for k in AnswerKind]})")
        return self

    def problems(self) -> list[str]:
        return _kind_problems(self.kind)

    def load(self):
        from .files import load_hf_dataset

        return (self.cap(load_hf_dataset(self.name, self.kind, self.hf_train_split, self.columns), self.n_train),
                self.cap(load_hf_dataset(self.name, self.kind, self.hf_test_split, self.columns), self.n_test_max))

    def where(self) -> str:
        return f"{self.name} splits {self.hf_train_split!r} and {self.hf_test_split!r}"
