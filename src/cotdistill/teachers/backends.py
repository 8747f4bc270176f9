"""Teacher backends: who writes the rationales. Each backend is one class holding its options (the
config's `teacher: {backend: openai, model: ..., ...}`), the preflight checks of those options
against the task, and how it builds its Teacher. A new backend is a subclass with
`backend: Literal["NAME"]`, registered with `@BACKENDS.add`; the config's `teacher` accepts it at once.

Options every backend has (prompting, sampling, the cache, prices) live on `TeacherBackend`.
"""
from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from ..errors import ConfigError
from ..io import path_problems
from ..registry import Registry
from ..settings import PlugIn, Setting
from .base import Teacher

HELP = "dataset: rationales the examples carry (metadata.rationale / human_rationale)"


class TeacherBackend(PlugIn):
    backend: str
    price_prompt_per_1m: float = Field(0.0, ge=0, description="USD per million prompt tokens, for cost estimates")
    price_completion_per_1m: float = Field(0.0, ge=0, description="USD per million completion tokens")
    prompt: Literal["zero_shot_cot", "few_shot_cot", "answer_given"] = Field(
        "zero_shot_cot", description="answer_given: the teacher sees the gold answer and writes the rationale "
        "(CoT Collection block format; `exemplars` = a demonstration file)")
    exemplars: str | None = Field(None, description="few_shot_cot: exemplar file")
    trigger: str | None = Field(None, description="zero_shot_cot stage-2 trigger (default: by answer kind)")
    n_samples: int = Field(1, ge=1, le=512, description="diverse reasoning: samples per question")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy; the paper samples at 0.7")
    max_tokens: int = Field(256, ge=1)
    answer_max_tokens: int = Field(32, ge=1, description="stage-2 answer length")
    seed: int | None = 0
    cache: str | None = Setting(None, description="SQLite cache path (default: OUT/teacher_cache.sqlite)")

    section, tag = "teacher", "backend"

    @model_validator(mode="after")
    def _exemplars(self):
        if self.prompt in ("few_shot_cot", "answer_given") and not self.exemplars:
            raise ValueError(f"teacher.prompt {self.prompt!r} needs `teacher.exemplars`")
        return self

    def problems(self, task) -> list[str]:
        """What is wrong with these options for `task` (a task source), found without a request."""
        return path_problems(self.exemplars, "teacher.exemplars")

    def build(self, task) -> Teacher:
        """The teacher for `task`, without the cache (teachers.build_teacher adds it)."""
        raise NotImplementedError


BACKENDS: Registry[type[TeacherBackend]] = Registry("teacher backend",
                                                     key=lambda cls: cls.model_fields["backend"].default)


@BACKENDS.add
class ExactBackend(TeacherBackend):
    backend: Literal["exact"] = "exact"

    @staticmethod
    def task_problem(task) -> str | None:
        if task.source != "synthetic":
            return (f"`teacher.backend`: 'exact' solves only the built-in synthetic tasks, and task.source is "
                    f"{task.source!r}; use openai, transformers, vllm, replay or dataset")
        return None

    def problems(self, task):
        return [p for p in [self.task_problem(task)] if p] + super().problems(task)

    def build(self, task):
        if problem := self.task_problem(task):
            raise ConfigError(problem)
        from .exact import ExactTeacher

        return ExactTeacher(task.name, task.params)


@BACKENDS.add
class OpenAIBackend(TeacherBackend):
    backend: Literal["openai"] = "openai"
    model: str | None = Field(None, description="model id")
    base_url: str | None = Field(None, description="server URL, e.g. http://localhost:8000/v1")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="environment variable holding the API key; null for none")
    endpoint: Literal["completions", "chat"] = "completions"
    concurrency: int = Setting(8, ge=1, le=1024, description="requests in flight")
    max_retries: int = Setting(8, ge=0, description="retries of 429/5xx/timeouts/connection errors/malformed bodies")
    timeout_s: float = Setting(60.0, gt=0, description="per-request timeout")
    requests_per_minute: float | None = Field(None, gt=0, description="client-side request rate limit")
    tokens_per_minute: float | None = Field(None, gt=0, description="client-side token rate limit (prompt/4 + max_tokens)")
    use_n: bool = Field(False, description="ask for all samples of a prompt in one request with `n` (servers that support it)")
    needs = ("model",)

    def problems(self, task):
        found = super().problems(task)
        if self.api_key_env and not os.environ.get(self.api_key_env):
            found.insert(0, f"`teacher.api_key_env`: ${self.api_key_env} is not set (set it, or `teacher.api_key_env: "
                            f"null` for a server that needs no key)")
        return found

    def build(self, task):
        from .openai_http import OpenAITeacher

        return OpenAITeacher(self.model, self.base_url, self.api_key_env, self.endpoint, self.concurrency,
                             self.max_retries, self.timeout_s, self.requests_per_minute, self.tokens_per_minute,
                             self.use_n)


class _LocalModel(TeacherBackend):
    model: str | None = Field(None, description="model id, local path or pretrained:NAME of a language model")
    batch_size: int = Setting(16, ge=1, description="generation batch")
    needs = ("model",)

    def problems(self, task):
        from ..students import model_problems

        return model_problems(self.model, "teacher.model", teacher=True) + super().problems(task)


@BACKENDS.add
class TransformersBackend(_LocalModel):
    backend: Literal["transformers"] = "transformers"

    def build(self, task):
        from .local import LocalTeacher

        return LocalTeacher(self.model, self.batch_size)


@BACKENDS.add
class VLLMBackend(_LocalModel):
    backend: Literal["vllm"] = "vllm"

    def build(self, task):
        from .vllm_backend import VLLMTeacher

        return VLLMTeacher(self.model, self.batch_size)


@BACKENDS.add
class ReplayBackend(TeacherBackend):
    backend: Literal["replay"] = "replay"
    path: str | None = Field(None, description="a Fine-tune-CoT D_{task}.json teacher file")
    needs = ("path",)

    def problems(self, task):
        return path_problems(self.path, "teacher.path") + super().problems(task)

    def build(self, task):
        from .replay import ReplayTeacher

        return ReplayTeacher(self.path)


@BACKENDS.add
class DatasetBackend(TeacherBackend):
    backend: Literal["dataset"] = "dataset"

    def build(self, task):
        from ..tasks import load_task
        from .dataset import DatasetTeacher

        return DatasetTeacher(load_task(task)[0], task.display_name)
