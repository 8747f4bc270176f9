"""Preflight: every problem in a config that can be found without running anything (names, paths,
combinations, credentials, where models come from), all reported together.

`validate` runs every check; each command runs the checks for the stages it will run before its
first expensive step, so a typo in a student name costs nothing, not a paid teacher pass.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .config import RunConfig
from .errors import ConfigError, CotDistillError
from .hub import model_source_problem

STAGES = ("data", "teacher", "train", "evaluate")


def check(cfg: RunConfig, stages: Iterable[str] = STAGES) -> None:
    """Raises one ConfigError listing every problem found for `stages`."""
    found = problems(cfg, stages)
    if found:
        raise ConfigError(f"{len(found)} problem(s) in config:\n" + "\n".join(f"  {p}" for p in found))


def problems(cfg: RunConfig, stages: Iterable[str] = STAGES) -> list[str]:
    stages = set(stages)
    unknown = stages - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}")
    found = [*_out_problems(cfg.out), *_task_problems(cfg)]
    if "teacher" in stages and _needs_teacher(cfg):
        found += _teacher_problems(cfg)
    if "train" in stages:
        found += _student_problems(cfg) + _tracker_problems(cfg.train.report_to)
    return found


# The package each tracker needs, where its name is not the package's (the rest import as named).
_TRACKER_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "azure_ml": ("azureml",), "flyte": ("flytekit",),
                     "kubeflow": ("kubeflow",)}


def _tracker_problems(report_to: list[str]) -> list[str]:
    if not report_to:
        return []
    import importlib.util

    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    found = []
    for name in report_to:
        if name not in INTEGRATION_TO_CALLBACK:
            found.append(f"`train.report_to`: unknown tracker {name!r}; transformers knows "
                         f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        elif not any(importlib.util.find_spec(p) for p in _TRACKER_PACKAGES.get(name, (name,))):
            extra = f"pip install 'cotdistill[{name}]'" if name in ("tensorboard", "wandb") else f"pip install {name}"
            found.append(f"`train.report_to`: {name} is not installed ({extra})")
    return found


def _student_problems(cfg: RunConfig) -> list[str]:
    found = _model_problems(cfg.student.model, "student.model")
    s = cfg.student
    if s.layers is not None and not s.model.startswith("pretrained:"):
        found.append(f"`student.layers`: picks layers of a `pretrained:` student; {s.model!r} is not one")
    if not found:
        from .methods import METHODS
        from .students import is_masked_lm

        masked = is_masked_lm(s.model)
        kinds = {m: METHODS.get(m).student_kind for m in cfg.methods if m in METHODS}
        generative = [m for m, k in kinds.items() if k == "generative"]
        mlm_only = [m for m, k in kinds.items() if k == "masked"]
        if masked and generative:
            found.append(f"`student.model`: {s.model} is a masked LM: it fills [MASK] slots and cannot write "
                         f"rationales or answers for {', '.join(generative)}; use a causal or seq2seq student "
                         f"(e.g. pretrained:minilm-seq2seq)")
        if s.lora:
            found += [p for p in [own_module_problem(cfg.methods)] if p]
        if not masked and mlm_only:
            found.append(f"`student.model`: {', '.join(mlm_only)} fill [MASK] slots of a masked-LM student; {s.model} "
                         f"is not one (use e.g. pretrained:minilm-mlm or a BERT-style model)")
    return found


def _needs_teacher(cfg: RunConfig) -> bool:
    from .methods import needs_rationales

    return needs_rationales(cfg.methods)


def _out_problems(out: str) -> list[str]:
    """`out` must be a folder we can create and write in; checked without creating anything."""
    p = Path(out).expanduser()
    if p.exists() and not p.is_dir():
        return [f"`out`: {p} is an existing file, not a folder; choose another output folder"]
    parent = p
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return [f"`out`: cannot create {p}: {parent} is a file"]
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        return [f"`out`: cannot write {p}: creating a file in {parent} failed ({e.strerror}); choose a writable folder"]
    return []


def _exists(path: str | None, field: str, what: str = "file") -> list[str]:
    if path and not Path(path).expanduser().exists():
        return [f"`{field}`: {path} does not exist"]
    if path and what == "file" and Path(path).expanduser().is_dir():
        return [f"`{field}`: {path} is a folder, not a {what}"]
    return []


def _per_entry(cfg: RunConfig, check_one) -> list[str]:
    """A mixture's problems, entry by entry, each naming its entry (with the entry's own teacher)."""
    found = []
    for i, e in enumerate(cfg.task.mixture):
        sub = cfg.model_copy(update={"task": e.task, "teacher": e.teacher or cfg.teacher})
        found += [f"task.mixture[{i}] ({e.label}): {p}" for p in check_one(sub)]
    return found


def _task_problems(cfg: RunConfig) -> list[str]:
    from .registry import unknown_name

    t = cfg.task
    if t.source == "mixture":
        return _per_entry(cfg, _task_problems)
    if t.kind == "math":
        import importlib.util

        from .tasks.answers import MATH_VERIFY_MISSING

        if importlib.util.find_spec("math_verify") is None:
            return [f"`task.kind`: {MATH_VERIFY_MISSING}"]
    if t.source == "synthetic":
        from .tasks.synthetic import SYNTHETIC, make_synthetic

        if t.name not in SYNTHETIC:
            return [f"`task.name`: {unknown_name('synthetic task', t.name, SYNTHETIC.names())}"]
        try:
            make_synthetic(t.name, t.params)
        except CotDistillError as e:
            return [f"`task.params`: {e}"]
        return []
    if t.source in ("benchmark", "release"):
        from .tasks.benchmarks import BENCHMARKS, SHARED_LOADERS, shared_folder

        known = [*BENCHMARKS, *SHARED_LOADERS]
        found = [] if t.name in known else [f"`task.name`: {unknown_name('benchmark', t.name, known)}"]
        if t.source == "release":
            found += _exists(t.path, "task.path")
        folder = shared_folder(t.name)
        if not Path(t.data_dir).is_dir():  # type: ignore[arg-type]  # required by TaskConfig
            found.append(f"`task.data_dir`: {t.data_dir} is not a folder")
        elif not (Path(t.data_dir) / folder).is_dir():  # type: ignore[arg-type]
            found.append(f"`task.data_dir`: {t.data_dir} has no {folder}/ folder (where {t.name} lives)")
        return found
    if t.source == "bigbench":
        if not Path(t.path).expanduser().exists():  # type: ignore[arg-type]  # required by TaskConfig
            return [f"`task.path`: {t.path} does not exist (a BIG-bench task folder or task.json was expected)"]
        return []
    if t.source == "file":
        found = _exists(t.path, "task.path") + _exists(t.test_path, "task.test_path")
        for field, p in (("task.path", t.path), ("task.test_path", t.test_path)):
            suffix = Path(p.removesuffix(".gz")).suffix.lower() if p else ""
            if p and suffix not in (".jsonl", ".json", ".csv"):
                found.append(f"`{field}`: {p}: unsupported file type {suffix!r}; use .jsonl, .json or .csv (optionally .gz)")
        return found
    return []


def _teacher_problems(cfg: RunConfig) -> list[str]:
    if cfg.task.source == "mixture":
        return _per_entry(cfg, _teacher_problems)
    t, found = cfg.teacher, []
    if t.backend == "exact" and cfg.task.source != "synthetic":
        found.append(f"`teacher.backend`: 'exact' solves only the built-in synthetic tasks, and task.source is "
                     f"{cfg.task.source!r}; use openai, transformers, vllm, replay or dataset")
    if t.backend == "openai" and t.api_key_env and not os.environ.get(t.api_key_env):
        found.append(f"`teacher.api_key_env`: ${t.api_key_env} is not set (set it, or `teacher.api_key_env: null` "
                     f"for a server that needs no key)")
    if t.backend in ("transformers", "vllm") and t.model:
        found += _model_problems(t.model, "teacher.model", teacher=True)
    found += _exists(t.path, "teacher.path") + _exists(t.exemplars, "teacher.exemplars")
    return found


def _model_problems(name: str, field: str, teacher: bool = False) -> list[str]:
    if name.startswith("preset:"):
        from .registry import unknown_name
        from .students.presets import PRESETS

        preset = name.split(":", 1)[1]
        return [] if preset in PRESETS else [f"`{field}`: {unknown_name('student preset', preset, PRESETS)}"]
    if name.startswith("pretrained:"):
        from .registry import unknown_name
        from .students.pretrained import PRETRAINED, is_language_model, pretrained_problem

        which = name.split(":", 1)[1]
        if which not in PRETRAINED:
            return [f"`{field}`: {unknown_name('pretrained student', which, PRETRAINED)}"]
        if teacher and not is_language_model(which):
            return [f"`{field}`: pretrained:{which} is a warm start built for training, not a language model "
                    f"that can teach; use {', '.join(f'pretrained:{n}' for n in PRETRAINED if is_language_model(n))}, "
                    f"a hub id or a model folder"]
        problem = pretrained_problem(which)
        return [f"`{field}`: {problem}"] if problem else []
    problem = model_source_problem(name)
    return [f"`{field}`: {problem}"] if problem else []


def own_module_problem(methods: list[str]) -> str | None:
    """Why LoRA cannot train these methods, or None: some train a module of their own, which
    adapters on the student would not reach. Checked in `validate` and again before training."""
    from .methods import METHODS

    owns = [m for m in methods if m in METHODS and METHODS.get(m).owns_training]
    if not owns:
        return None
    return (f"`student.lora`: {', '.join(owns)} train a module of their own (masked-LM heads, AS-ES's two "
            f"students); LoRA works with methods that train the student itself")
