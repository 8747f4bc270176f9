"""Teachers: one protocol, several backends, prompting styles and a persistent cache."""
from __future__ import annotations

from pathlib import Path

from .base import Completion, GenParams, Request, Teacher
from .cache import CachedTeacher, CompletionCache

__all__ = ["Completion", "GenParams", "Request", "Teacher", "build_teacher", "build_prompting"]


def build_teacher(cfg, task_cfg, cache: str | Path | None) -> Teacher:
    """The teacher of `cfg` (a backend's options) for `task_cfg`, answering from the SQLite cache at
    `cache` first (None: no cache). Backends import lazily, so that `cotdistill --help` stays fast
    and optional extras stay optional."""
    inner = cfg.build(task_cfg)
    if cache is None:
        return inner
    return CachedTeacher(inner, CompletionCache(Path(cache)), cfg.price_prompt_per_1m, cfg.price_completion_per_1m)


def build_prompting(cfg, task_name: str):
    from .prompting import AnswerGiven, ZeroShotCoT, load_block_demos, load_few_shot

    if cfg.prompt == "answer_given":
        instructions, demos = load_block_demos(cfg.exemplars)
        return AnswerGiven(demos, instructions)
    if cfg.prompt == "few_shot_cot":
        return load_few_shot(cfg.exemplars, task_name)
    return ZeroShotCoT(cfg.trigger)
