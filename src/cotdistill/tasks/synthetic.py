"""Built-in synthetic reasoning tasks with exact step-by-step rationales.

Each task renders a question from a seeded RNG and can *solve* its own question text: `solve`
parses the question and returns (rationale, answer). The exact teacher calls `solve`, so it is a
real solver of these tasks, not a lookup table. Difficulty knobs are the tasks' parameters.
"""
from __future__ import annotations

import random
import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import DataError, field_problems
from ..registry import Registry
from .schema import AnswerKind, Example, choice_letters, format_choices

NAMES = (
    "Alice Bob Claire Dave Eve Frank Grace Heidi Ivan Judy Mallory Nick Olivia Peggy Quinn Rupert "
    "Sybil Trent Ursula Victor Walter Xena Yusuf Zoe Abby Brett Chloe Derek Ella Finn Gina Hugo Iris "
    "Jack Kira Liam Mona Noah Opal Pete"
).split()


class SyntheticTask(BaseModel):
    """Base: subclasses set `name`, `kind` and implement `render` and `solve`."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str]
    kind: ClassVar[AnswerKind]

    def render(self, rng: random.Random) -> tuple[str, list[str] | None]:
        raise NotImplementedError

    def solve(self, question: str) -> tuple[str, str]:
        raise NotImplementedError

    def generate(self, n: int, seed: int = 0, exclude: set[str] | None = None) -> list[Example]:
        """`n` distinct questions (none of them in `exclude`), reproducible from `seed`."""
        rng = random.Random(f"{self.name}:{seed}")
        seen = set(exclude or ())
        out: list[Example] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise DataError(
                    f"synthetic task {self.name!r} with {self.model_dump()} has fewer than {n} distinct "
                    f"questions; raise its difficulty knobs or ask for fewer examples"
                )
            question, choices = self.render(rng)
            if question in seen:
                continue
            seen.add(question)
            rationale, answer = self.solve(question)
            out.append(
                Example(
                    id=f"{self.name}-{seed}-{len(out)}",
                    question=question,
                    answer=answer,
                    kind=self.kind,
                    choices=choices,
                    metadata={"rationale": rationale, "task": self.name, "params": self.model_dump()},
                )
            )
        return out

    def _unparseable(self, question: str) -> DataError:
        return DataError(f"{self.name}: cannot solve question {question[:80]!r}: not in this task's format")


SYNTHETIC: Registry[type[SyntheticTask]] = Registry("synthetic task")


@SYNTHETIC.register("coin_flip")
class CoinFlip(SyntheticTask):
    name: ClassVar[str] = "coin_flip"
    kind: ClassVar[AnswerKind] = AnswerKind.yes_no
    n_people: int = Field(4, ge=1, le=len(NAMES), description="people who may flip the coin")

    def render(self, rng):
        people = rng.sample(NAMES, self.n_people)
        acts = [f"{p} flips the coin." if rng.random() < 0.5 else f"{p} does not flip the coin." for p in people]
        return "A coin is heads up. " + " ".join(acts) + " Is the coin still heads up?", None

    def solve(self, question):
        acts = re.findall(r"(\w+) (flips|does not flip) the coin\.", question)
        if not question.startswith("A coin is heads up.") or not acts:
            raise self._unparseable(question)
        side, steps = "heads", []
        for person, act in acts:
            if act == "flips":
                side = "tails" if side == "heads" else "heads"
            steps.append(f"{person} {'flips' if act == 'flips' else 'does not flip'}: {side}.")
        answer = "yes" if side == "heads" else "no"
        return " ".join(steps) + f" The coin is {side} up, so the answer is {answer}.", answer


@SYNTHETIC.register("last_letters")
class LastLetters(SyntheticTask):
    name: ClassVar[str] = "last_letters"
    kind: ClassVar[AnswerKind] = AnswerKind.text
    n_words: int = Field(4, ge=1, le=12, description="words whose last letters are joined")

    def render(self, rng):
        words = rng.sample(NAMES, self.n_words)
        return f'Take the last letters of each words in "{" ".join(words)}" and concatenate them.', None

    def solve(self, question):
        m = re.search(r'in "([^"]+)"', question)
        if not m:
            raise self._unparseable(question)
        words = m.group(1).split()
        steps = [f'"{w}" ends with "{w[-1]}".' for w in words]
        answer = "".join(w[-1] for w in words).lower()
        return " ".join(steps) + f' Together: "{answer}".', answer


@SYNTHETIC.register("multiplication")
class Multiplication(SyntheticTask):
    """a x b written out as partial products (one per digit of b), then their running sum."""

    name: ClassVar[str] = "multiplication"
    kind: ClassVar[AnswerKind] = AnswerKind.number
    digits_a: int = Field(3, ge=1, le=6)
    digits_b: int = Field(2, ge=1, le=4)

    def render(self, rng):
        a = rng.randint(10 ** (self.digits_a - 1), 10**self.digits_a - 1)
        b = rng.randint(10 ** (self.digits_b - 1), 10**self.digits_b - 1)
        return f"What is {a} * {b}?", None

    def solve(self, question):
        m = re.fullmatch(r"What is (\d+) \* (\d+)\?", question.strip())
        if not m:
            raise self._unparseable(question)
        a, b = int(m.group(1)), int(m.group(2))
        parts, steps = [], []
        for i, d in enumerate(reversed(str(b))):
            p = a * int(d) * 10**i
            parts.append(p)
            steps.append(f"{a} * {int(d) * 10**i} = {p}.")
        total = parts[0]
        for p in parts[1:]:
            steps.append(f"{total} + {p} = {total + p}.")
            total += p
        return " ".join(steps), str(a * b)


_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}


@SYNTHETIC.register("arithmetic")
class Arithmetic(SyntheticTask):
    """A left-to-right chain of operations, e.g. "Compute 12 + 7 * 3 - 5, left to right."."""

    name: ClassVar[str] = "arithmetic"
    kind: ClassVar[AnswerKind] = AnswerKind.number
    n_ops: int = Field(3, ge=1, le=10, description="operations in the chain (= reasoning steps)")
    max_operand: int = Field(20, ge=2, le=1000)
    ops: str = Field("+-*", description="operators to draw from")

    def render(self, rng):
        terms = [str(rng.randint(1, self.max_operand))]
        for _ in range(self.n_ops):
            op = rng.choice(self.ops)
            y = rng.randint(1, 9) if op == "*" else rng.randint(1, self.max_operand)
            terms += [op, str(y)]
        return f"Compute {' '.join(terms)}, left to right.", None

    def solve(self, question):
        m = re.fullmatch(r"Compute (.+), left to right\.", question.strip())
        if not m:
            raise self._unparseable(question)
        toks = m.group(1).split()
        if len(toks) % 2 == 0 or any(t not in _OPS for t in toks[1::2]):
            raise self._unparseable(question)
        acc, steps = int(toks[0]), []
        for op, y in zip(toks[1::2], toks[2::2]):
            new = _OPS[op](acc, int(y))
            steps.append(f"{acc} {op} {y} = {new}.")
            acc = new
        return " ".join(steps), str(acc)


@SYNTHETIC.register("clock")
class Clock(SyntheticTask):
    """Modular state tracking (coin flip generalised to `size` positions): a dial is turned
    several times; where does it point? Each step is a small lookup, but doing all the turns
    in one go is a sum modulo `size`, which small students fail to learn without the steps."""

    name: ClassVar[str] = "clock"
    kind: ClassVar[AnswerKind] = AnswerKind.number
    n_moves: int = Field(5, ge=1, le=20, description="turns of the dial (= reasoning steps)")
    size: int = Field(10, ge=2, le=100, description="positions on the dial, 0..size-1")

    def render(self, rng):
        start = rng.randrange(self.size)
        moves = [f"It turns {rng.randint(1, self.size - 1)} {rng.choice(['forward', 'back'])}." for _ in range(self.n_moves)]
        return (f"A dial with positions 0 to {self.size - 1} points at {start}. " + " ".join(moves)
                + " Where does it point now?"), None

    def solve(self, question):
        m = re.match(r"A dial with positions 0 to (\d+) points at (\d+)\.", question)
        moves = re.findall(r"It turns (\d+) (forward|back)\.", question)
        if not m or not moves:
            raise self._unparseable(question)
        size, cur, steps = int(m.group(1)) + 1, int(m.group(2)), []
        for n, d in moves:
            new = (cur + int(n)) % size if d == "forward" else (cur - int(n)) % size
            steps.append(f"{cur} {'+' if d == 'forward' else '-'} {n} is {new}.")
            cur = new
        return " ".join(steps), str(cur)


_ITEMS = "apples pens books coins cards marbles stamps shells".split()


@SYNTHETIC.register("word_problems")
class WordProblems(SyntheticTask):
    """Multi-step word problems: a starting amount changed by n events."""

    name: ClassVar[str] = "word_problems"
    kind: ClassVar[AnswerKind] = AnswerKind.number
    n_steps: int = Field(3, ge=1, le=8)
    max_amount: int = Field(20, ge=2, le=1000)
    restate: bool = Field(False, description="the rationale restates each fact before computing with it "
                          "(extractive and abstractive steps mixed, for AS-ES)")

    _EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "buys": ("+", "{p} buys {n} more {i}."),
        "finds": ("+", "{p} finds {n} {i}."),
        "gives": ("-", "{p} gives {n} {i} to a friend."),
        "loses": ("-", "{p} loses {n} {i}."),
        "times": ("*", "{p} ends up with {n} times as many {i}."),
    }

    def render(self, rng):
        p, item = rng.choice(NAMES), rng.choice(_ITEMS)
        amount = rng.randint(1, self.max_amount)
        sents, cur = [f"{p} has {amount} {item}."], amount
        for _ in range(self.n_steps):
            ev = rng.choice(list(self._EVENTS))
            op, tmpl = self._EVENTS[ev]
            n = rng.randint(2, 4) if op == "*" else rng.randint(1, self.max_amount)
            if op == "-" and n > cur:  # keep counts non-negative so the story makes sense
                op, tmpl, n = self._EVENTS["buys"][0], self._EVENTS["buys"][1], n
            sents.append(tmpl.format(p=p, n=n, i=item))
            cur = _OPS[op](cur, n)
        sents.append(f"How many {item} does {p} have now?")
        return " ".join(sents), None

    def solve(self, question):
        m = re.match(r"(\w+) has (\d+) (\w+)\.", question)
        if not m:
            raise self._unparseable(question)
        cur, steps = int(m.group(2)), []
        who, item = m.group(1), m.group(3)
        if self.restate:
            steps.append(f"{who} has {cur} {item}.")
        pat = re.compile(r"(buys|finds|gives|loses|ends up with) (\d+)")
        for ev, n in pat.findall(question[m.end():]):
            op = {"buys": "+", "finds": "+", "gives": "-", "loses": "-", "ends up with": "*"}[ev]
            new = _OPS[op](cur, int(n))
            if self.restate:
                steps.append(f"{who} {ev} {n}{' times as many' if op == '*' else ''} {item}.")
            steps.append(f"{cur} {op} {n} = {new}.")
            cur = new
        if not steps:
            raise self._unparseable(question)
        return " ".join(steps) + f" So the answer is {cur}.", str(cur)


_COLORS = "red blue green yellow orange purple white black".split()


@SYNTHETIC.register("shuffled_objects")
class ShuffledObjects(SyntheticTask):
    """Tracking shuffled objects: people swap balls; which ball does the first person hold?"""

    name: ClassVar[str] = "shuffled_objects"
    kind: ClassVar[AnswerKind] = AnswerKind.choice
    n_objects: int = Field(3, ge=2, le=7)
    n_swaps: int = Field(3, ge=1, le=12)

    def render(self, rng):
        people = rng.sample(NAMES[:20], self.n_objects)
        colors = rng.sample(_COLORS, self.n_objects)
        intro = ", ".join(f"{p} has a {c} ball" for p, c in zip(people, colors))
        swaps = [" and ".join(rng.sample(people, 2)) + " swap balls." for _ in range(self.n_swaps)]
        q = f"{intro}. " + " ".join(swaps) + f" At the end, {people[0]} has the"
        choices = [f"{c} ball" for c in colors]
        return q + " " + format_choices(choices), choices

    def solve(self, question):
        holds = dict(re.findall(r"(\w+) has a (\w+) ball", question))
        order = [c for _, c in re.findall(r"(\w+) has a (\w+) ball", question)]
        swaps = re.findall(r"(\w+) and (\w+) swap balls\.", question)
        end = re.search(r"At the end, (\w+) has the", question)
        if not holds or not end:
            raise self._unparseable(question)
        steps = []
        for a, b in swaps:
            holds[a], holds[b] = holds[b], holds[a]
            steps.append(f"{a} and {b} swap: {a} {holds[a]}, {b} {holds[b]}.")
        final = holds[end.group(1)]
        letter = choice_letters(len(order))[order.index(final)]
        return " ".join(steps) + f" {end.group(1)} has the {final} ball, so the answer is ({letter}).", letter


class MixPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict = Field(default_factory=dict)


@SYNTHETIC.register("mixed")
class Mixed(SyntheticTask):
    """Several synthetic tasks in one set, in equal shares: questions of different difficulty
    side by side (what adaptive thinking routes between). Each example keeps its part's answer
    kind, and `metadata.task` names the part; the solver dispatches on the question's format."""

    name: ClassVar[str] = "mixed"
    kind: ClassVar[AnswerKind] = AnswerKind.text  # per example: each part's own kind
    parts: list[MixPart] = Field(default_factory=lambda: [
        MixPart(name="last_letters", params={"n_words": 3}),
        MixPart(name="arithmetic", params={"n_ops": 2, "ops": "+", "max_operand": 50}),
        MixPart(name="arithmetic", params={"n_ops": 4, "ops": "+", "max_operand": 50}),
    ], min_length=1)

    def _tasks(self) -> list[SyntheticTask]:
        if any(p.name == self.name for p in self.parts):
            raise DataError("synthetic task 'mixed' cannot contain another 'mixed'")
        return [make_synthetic(p.name, p.params) for p in self.parts]

    def generate(self, n, seed=0, exclude=None):
        tasks = self._tasks()
        seen = set(exclude or ())
        out: list[Example] = []
        for i, task in enumerate(tasks):
            share = n // len(tasks) + (i < n % len(tasks))
            for ex in task.generate(share, seed=seed * 1000 + i, exclude=seen):
                seen.add(ex.question)
                out.append(ex.model_copy(update={"id": f"mixed{i}-{ex.id}", "metadata": {**ex.metadata, "part": i}}))
        random.Random(f"mixed:{seed}").shuffle(out)
        return out

    def solve(self, question):
        for task in self._tasks():
            try:
                return task.solve(question)
            except DataError:
                continue
        raise self._unparseable(question)


def make_synthetic(name: str, params: dict | None = None) -> SyntheticTask:
    cls = SYNTHETIC.get(name)
    try:
        return cls(**(params or {}))
    except ValidationError as e:  # name each knob, and the ones the task has
        known = ", ".join(f for f in cls.model_fields if f not in SyntheticTask.model_fields) or "none"
        probs = field_problems(e, "unknown parameter", lambda loc: loc or "<params>")
        raise DataError(f"synthetic task {name!r}: bad parameters: {probs} (its parameters: "
                        f"{known}; `--set task.params={{}}` takes its defaults)") from None
