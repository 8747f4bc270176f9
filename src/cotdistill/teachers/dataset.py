"""The data set as teacher: rationales the examples already carry (GSM8K's human solutions, the
PaLM rationales of Distilling step-by-step's SVAMP release, a `rationale` column of a file). It
answers Zero-shot-CoT stage 1 with the example's rationale and stage 2 with its gold answer, so
these rationales go through the same curation, cache and methods as a model teacher's."""
from __future__ import annotations

from typing import Sequence

from ..errors import TeacherError
from ..tasks.schema import Example
from .base import Completion, Progress, Request, Teacher
from .prompting import known_reply, last_question

RATIONALE_FIELDS = ("rationale", "human_rationale")


def rationale_of(ex: Example) -> str | None:
    for f in RATIONALE_FIELDS:
        r = ex.metadata.get(f)
        if isinstance(r, str) and r.strip():
            return r.strip()
    return None


class DatasetTeacher(Teacher):
    backend = "dataset"

    def __init__(self, examples: list[Example], name: str):
        self.name = name
        self.by_question: dict[str, tuple[str, str]] = {}
        missing = []
        for ex in examples:
            r = rationale_of(ex)
            if r is None:
                missing.append(ex.id)
            else:
                self.by_question[ex.question.strip()] = (r, ex.answer)
        if missing:
            raise TeacherError(f"teacher.backend 'dataset': {len(missing)} of {len(examples)} examples of {name} carry "
                               f"no rationale (metadata fields {list(RATIONALE_FIELDS)}), e.g. {missing[:3]}; map a "
                               f"rationale column with `task.columns.rationale`")

    @property
    def identity(self) -> dict:
        return {"backend": self.backend, "data": self.name}

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out = []
        for r in requests:
            q = last_question(r.prompt)
            found = self.by_question.get(q[0].strip()) if q else None
            if found is None:
                raise TeacherError(f"teacher.backend 'dataset': the prompt's question is not in the data set "
                                   f"({r.prompt[:80]!r})")
            text = known_reply(q[1], *found)
            out.append(Completion(text, "stop", len(r.prompt.split()), len(text.split())))
        if progress:
            progress(len(requests))
        return out
