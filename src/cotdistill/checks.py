"""Preflight: every problem in a config that can be found without running anything (names, paths,
combinations, credentials, where models come from), all reported together.

`validate` runs every check; each command runs the checks for the stages it will run before its
first expensive step, so a typo in a student name costs nothing, not a paid teacher pass.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

from .config import RunConfig
from .errors import ConfigError

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
    found = [*_out_problems(cfg.out), *cfg.task.problems()]
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
    from .students import layers_problem, model_problems

    s = cfg.student
    found = model_problems(s.model, "student.model") + [p for p in [layers_problem(s.model, s.layers)] if p]
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
        for m in cfg.methods:
            found += cfg.method(m).problems(cfg)
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


def _teacher_problems(cfg: RunConfig) -> list[str]:
    """Each rationale source's problems with its task (a mixture's entries each name their entry)."""
    return [f"{where}: {p}" if where else p for where, _, teacher, task in cfg.task.rationale_sources(cfg.teacher)
            for p in teacher.problems(task)]


def own_module_problem(methods: list[str]) -> str | None:
    """Why LoRA cannot train these methods, or None: some train a module of their own, which
    adapters on the student would not reach. Checked in `validate` and again before training."""
    from .methods import METHODS

    owns = [m for m in methods if m in METHODS and METHODS.get(m).owns_training]
    if not owns:
        return None
    return (f"`student.lora`: {', '.join(owns)} train a module of their own (masked-LM heads, AS-ES's two "
            f"students); LoRA works with methods that train the student itself")
