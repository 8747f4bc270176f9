"""Teachers: one protocol, several backends, prompting styles and a persistent cache."""
from __future__ import annotations

from pathlib import Path

from .base import Completion, GenParams, Request, Teacher
from .cache import CachedTeacher, CompletionCache

__all__ = ["Completion", "GenParams", "Request", "Teacher", "build_teacher", "build_prompting"]


def build_teacher(cfg, task_cfg, out_dir: str | Path, use_cache: bool = True) -> Teacher:
    """Backends import lazily so `cotdistill --help` stays fast and optional extras stay optional."""
    if cfg.backend == "exact":
        if task_cfg.source != "synthetic":
            from ..errors import ConfigError

            raise ConfigError("teacher.backend 'exact' only solves built-in synthetic tasks (task.source: synthetic)")
        from .exact import ExactTeacher

        inner: Teacher = ExactTeacher(task_cfg.name, task_cfg.params)
    elif cfg.backend == "dataset":
        from ..tasks import load_task
        from .dataset import DatasetTeacher

        inner = DatasetTeacher(load_task(task_cfg)[0], task_cfg.display_name)
    elif cfg.backend == "openai":
        from .openai_http import OpenAITeacher

        inner = OpenAITeacher(cfg.model, cfg.base_url, cfg.api_key_env, cfg.endpoint, cfg.concurrency,
                              cfg.max_retries, cfg.timeout_s, cfg.requests_per_minute, cfg.tokens_per_minute,
                              cfg.use_n)
    elif cfg.backend == "vllm":
        from .vllm_backend import VLLMTeacher

        inner = VLLMTeacher(cfg.model, cfg.batch_size)
    elif cfg.backend == "transformers":
        from .local import LocalTeacher

        inner = LocalTeacher(cfg.model, cfg.batch_size)
    else:
        from .replay import ReplayTeacher

        inner = ReplayTeacher(cfg.path)
    if not use_cache:
        return inner
    path = Path(cfg.cache) if cfg.cache else Path(out_dir) / "teacher_cache.sqlite"
    return CachedTeacher(inner, CompletionCache(path), cfg.price_prompt_per_1m, cfg.price_completion_per_1m)


def build_prompting(cfg, task_name: str):
    from .prompting import AnswerGiven, ZeroShotCoT, load_block_demos, load_few_shot

    if cfg.prompt == "answer_given":
        instructions, demos = load_block_demos(cfg.exemplars)
        return AnswerGiven(demos, instructions)
    if cfg.prompt == "few_shot_cot":
        return load_few_shot(cfg.exemplars, task_name)
    return ZeroShotCoT(cfg.trigger)
