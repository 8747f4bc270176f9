"""Progress of long work (teacher calls, training steps, evaluation): one protocol, a bar for a
terminal and a line log for everything else. Benchmarks and `cotdistill ... > run.log` run for
hours in the background, where a live bar draws nothing until the end, so a stream that is not a
terminal gets a plain line every `every` seconds: done/total, rate, elapsed and remaining time."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable, Iterator, Protocol, TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


class Reporter(Protocol):
    def task(self, desc: str, total: int | None) -> contextlib.AbstractContextManager[Callable[..., None]]: ...


class SilentReporter:
    @contextlib.contextmanager
    def task(self, desc: str, total: int | None) -> Iterator[Callable[..., None]]:
        yield lambda n, **kw: None


def _extra(tokens: int, cost: float | None) -> str:
    """Teacher work also counts tokens and, where the backend knows prices, estimated cost."""
    return (f"{tokens:,} tok" if tokens else "") + (f" ${cost:,.4f}" if cost else "")


class RichReporter:
    """Progress bars: done/total, rate, elapsed, ETA; teacher bars also show tokens and est. cost."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)

    @contextlib.contextmanager
    def task(self, desc: str, total: int | None) -> Iterator[Callable[..., None]]:
        cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}")]
        with Progress(*cols, console=self.console, transient=False) as p:
            tid = p.add_task(desc, total=total, rate="", extra="")
            totals = {"tokens": 0}

            def advance(n: int, tokens: int = 0, cost: float | None = None) -> None:
                totals["tokens"] += tokens
                speed = p.tasks[tid].speed
                p.update(tid, advance=n, rate=f"{speed:.1f}/s" if speed else "", extra=_extra(totals["tokens"], cost))

            yield advance


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class LineReporter:
    """One line per `every` seconds while a task advances, and one when it ends, e.g.
    `evaluate cot_tuning: 96/250 (38%) 0.42/s elapsed 0:03:48 eta 0:06:07`. The rate of a line
    is that of the work since the line before (a resumed run's first jump, or batches that grow
    longer, would mislead an average from the start); the last line's is the whole task's."""

    def __init__(self, stream: TextIO | None = None, every: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.stream, self.every, self.clock = stream, every, clock

    @staticmethod
    def _line(desc: str, done: int, total: int | None, spent: float, rate: float, extra: str, last: bool) -> str:
        parts = [f"{desc}: {done}/{total}" if total else f"{desc}: {done}"]
        if total:
            parts.append(f"({100 * done / total:.0f}%)")
        parts += [f"{rate:.2f}/s" if rate else "", f"elapsed {_clock(spent)}"]
        if total and rate and done < total and not last:
            parts.append(f"eta {_clock((total - done) / rate)}")
        return " ".join(p for p in [*parts, extra] if p)

    @contextlib.contextmanager
    def task(self, desc: str, total: int | None) -> Iterator[Callable[..., None]]:
        stream = self.stream or sys.stderr
        start = self.clock()
        state = {"done": 0, "tokens": 0, "cost": None, "mark": (start, 0)}

        def write(since: tuple[float, int], last: bool = False) -> None:
            now = self.clock()
            rate = (state["done"] - since[1]) / (now - since[0]) if now > since[0] else 0.0
            print(self._line(desc, state["done"], total, now - start, rate, _extra(state["tokens"], state["cost"]),
                             last), file=stream, flush=True)
            state["mark"] = (now, state["done"])

        def advance(n: int, tokens: int = 0, cost: float | None = None) -> None:
            state["done"] += n
            state["tokens"] += tokens
            state["cost"] = cost if cost is not None else state["cost"]
            if self.clock() - state["mark"][0] >= self.every:
                write(state["mark"])

        print(f"{desc}: started{f', {total} to do' if total else ''}", file=stream, flush=True)
        try:
            yield advance
        finally:
            write((start, 0), last=True)  # also when the work fails: how far it got


def reporter_for(console: Console | None = None, every: float = 30.0) -> RichReporter | LineReporter:
    """Bars on a terminal (or a notebook), lines on a file or pipe (a background job's log)."""
    console = console or Console(stderr=True)
    if console.is_terminal or console.is_jupyter:
        return RichReporter(console)
    return LineReporter(console.file, every)


def quiet_libraries() -> None:
    """Our progress reports the work: transformers' own bars (loading weights, writing shards) and
    its warnings below errors would only clutter a terminal or a log. The CLI and the benches call it."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers missing is reported where it is needed
        pass
