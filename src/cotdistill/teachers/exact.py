"""The exact teacher for the built-in synthetic tasks: it solves the question in the prompt
with the task's own solver, so it is always right and needs no model or network. It answers
Zero-shot-CoT stage 1 with the rationale, stage 2 with the answer, and few-shot prompts with
"{rationale} The answer is {answer}."."""
from __future__ import annotations

from typing import Sequence

from ..errors import TeacherError
from ..tasks.synthetic import make_synthetic
from .base import Completion, Progress, Request, Teacher
from .prompting import known_reply, last_question



class ExactTeacher(Teacher):
    backend = "exact"

    def __init__(self, task: str, params: dict | None = None):
        self.task_name = task
        self.task = make_synthetic(task, params)

    @property
    def identity(self) -> dict:
        # Solvers ignore the difficulty knobs, but not the ones that change what a rationale says.
        style = {k: v for k, v in self.task.model_dump().items() if k in ("restate",) and v}
        return {"backend": self.backend, "task": self.task_name, **style}

    def _answer(self, prompt: str) -> str:
        found = last_question(prompt)
        if found is None:
            raise TeacherError(f"exact teacher: no 'Q: ...\\nA:' in prompt {prompt[:80]!r}")
        question, after = found
        return known_reply(after, *self.task.solve(question))

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out = []
        for r in requests:
            text = self._answer(r.prompt)
            out.append(Completion(text, "stop", len(r.prompt.split()), len(text.split())))
        if progress:
            progress(len(requests))
        return out
