"""The teacher protocol: prompts and generation parameters in, completions out.

A request is one (prompt, parameters, sample index); asking for n samples of a prompt is n
requests with sample indices 0..n-1 (and seed = base seed + sample index where the backend takes
a seed). That unit is what the cache stores, so a resumed run asks only for missing samples.
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence


@dataclass(frozen=True)
class GenParams:
    temperature: float = 0.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class Request:
    prompt: str
    params: GenParams = field(default_factory=GenParams)
    sample_index: int = 0

    @property
    def seed(self) -> int | None:
        return None if self.params.seed is None else self.params.seed + self.sample_index


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | backend-specific
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_s: float = 0.0
    cached: bool = False


Progress = Callable[..., None]  # progress(n_done, tokens=0, cost=0.0): requests just finished
OnResult = Callable[[int, "Completion"], None]  # on_result(request index, completion), as each arrives


class Teacher(abc.ABC):
    """A backend. `identity` must change whenever outputs could change (model id, revision,
    endpoint kind), because the cache is keyed on it: two models never share entries."""

    backend: str = "?"

    @property
    @abc.abstractmethod
    def identity(self) -> dict: ...

    def complete(self, requests: Sequence[Request], progress: Progress | None = None,
                 on_result: OnResult | None = None) -> list[Completion]:
        """One completion per request, in order; `on_result` sees each one as soon as it exists,
        so a store can commit it before the rest arrive."""
        out = self._complete(requests, progress)
        if on_result:
            for i, c in enumerate(out):
                on_result(i, c)
        return out

    def _complete(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def group_samples(requests: Sequence[Request]) -> list[list[int]]:
    """Indices of consecutive samples of one prompt with equal parameters, for backends that
    can draw n samples in one call (a server's `n`, vLLM's SamplingParams(n))."""
    groups: list[list[int]] = []
    for i, r in enumerate(requests):
        last = requests[groups[-1][-1]] if groups else None
        if last is not None and last.prompt == r.prompt and last.params == r.params \
                and last.sample_index + 1 == r.sample_index:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups
