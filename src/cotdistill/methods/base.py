"""The method contract: how curated rationales become training pairs, what the student is
prompted with at inference, and how an answer is read from what it generates.

A method is mostly pure functions over text. The training loop, generation and evaluation are
shared by every method; what a method may own, it declares here and overrides:
- what it trains on: text pairs (`train_pairs`, default) or its own module, features, collator and
  loss (`training`, returning `TrainingParts`), with per-group validation losses (`loss_groups`);
- questions kept out of training for parts fitted afterwards (`held_out_fraction`, `after_train`),
  saved beside the student and loaded back (`load_extras`);
- decoding (`source`, `stop`, `parse`, or all of `predict`) and its own figures (`metrics`).
A method is registered under its `name` (`@METHODS.register`), once.

Options: each method declares a pydantic `Options` model, filled from the config's
`method_options: {METHOD: {...}}`; options named in `inference_options` change only how the
student is used, so changing them never invalidates a trained model.
"""
from __future__ import annotations

import abc
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError, field_problems
from ..students.data import Pair
from ..tasks.answers import extract, normalize_gold
from ..tasks.schema import Example

if TYPE_CHECKING:
    from ..hf import Generated

SEP = "-->"  # Fine-tune-CoT's answer separator
PROMPT_END = " ###"  # Fine-tune-CoT's decoder-only prompt terminator


Encode = Callable[[list, int], "tuple[list[dict], int]"]  # (items, max tokens) -> (features, skipped over-long)


@dataclass
class TrainingParts:
    """What the shared training loop trains for one method (`Method.training`).

    Text pairs (the default): `model` is the student, `train`/`val` are Pairs, and `encode`/`collator`
    are left to the loop. A method that owns its training gives its own module (its forward returns
    {"loss": ...}), its own items, `encode` turning them into features and a `collator` batching them.
    `info` goes into train_info.json; `after_train` receives these parts (e.g. a second student)."""

    model: Any
    train: Sequence
    val: Sequence
    n_items: int  # what train.epochs counts passes over
    encode: Encode | None = None
    collator: Callable[[list[dict]], dict] | None = None
    groups: dict[str, list[Pair]] = field(default_factory=dict)  # validation pairs whose loss is logged by name
    info: dict[str, Any] = field(default_factory=dict)
    state: Any = None  # what the method built for this training (e.g. its label space), for after_train


@dataclass
class Parsed:
    answer: str | None
    rationale: str | None


@dataclass
class Output:
    """What a method's inference produced for one question: the raw generation, what was read out
    of it, and method-specific fields for the prediction record (e.g. adaptive's route)."""

    generated: "Generated"
    parsed: Parsed
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # per-question wall time when the method measures it itself
    extra_tokens: int = 0  # tokens generated beyond `generated` (e.g. a second, explaining pass)

    @property
    def generated_tokens(self) -> int:
        """Every token this question cost to generate."""
        return self.generated.completion_tokens + self.extra_tokens


class MethodOptions(BaseModel):
    """Base of every method's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Method(abc.ABC):
    name: ClassVar[str]
    uses_rationales: ClassVar[bool]
    paper: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = MethodOptions
    inference_options: ClassVar[frozenset[str]] = frozenset()
    # "generative": writes its answer (decoder-only or encoder-decoder students); "masked": fills
    # [MASK] slots of a masked-LM student and owns its features, loss and decoding (masked.py).
    student_kind: ClassVar[str] = "generative"
    # True: `training` gives a module of the method's own (LoRA adapters on the student would not
    # reach it). Training loop and checkpoints stay shared.
    owns_training: ClassVar[bool] = False
    # Figures of `metrics` that summary tables show as a column: {key: (heading, format)}.
    columns: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, options: dict | None = None):
        self.opts = validate_options(type(self), options)

    def training_options(self) -> dict:
        """The options a trained student depends on (part of the training fingerprint)."""
        return self.opts.model_dump(mode="json", exclude=set(self.inference_options))

    def gold(self, ex: Example) -> str:
        """The answer as the student writes it: the normalised gold (e.g. "39", "B", "yes")."""
        return normalize_gold(ex.answer, ex.kind, ex.choices)

    def source(self, ex: Example, seq2seq: bool) -> str:
        """Decoder-only: `{q} ###`; encoder-decoder: `{q}`."""
        return self.prefixed_source("", ex, seq2seq)

    @staticmethod
    def prefixed_source(prefix: str, ex: Example, seq2seq: bool) -> str:
        """The source with a task or mode prefix (`predict: {q} ###`); no prefix: `{q} ###`."""
        text = f"{prefix}: {ex.question}" if prefix else ex.question
        return text if seq2seq else f"{text}{PROMPT_END}"

    def _target(self, body: str, seq2seq: bool) -> str:
        return body if seq2seq else f" {body}"

    @abc.abstractmethod
    def train_pairs(self, ex: Example, rationales: list[str], seq2seq: bool) -> list[Pair]:
        """Training pairs for one question from its kept rationales (maybe none)."""

    @abc.abstractmethod
    def parse(self, text: str, ex: Example) -> Parsed:
        """Read the answer (and rationale) out of the student's generation."""

    def stop(self) -> tuple[str, ...]:
        """Strings that end generation early (besides end-of-sequence)."""
        return ()

    def problems(self, cfg) -> list[str]:
        """What is wrong with this method's options for the run `cfg`, found before anything trains
        (part of `cotdistill validate` and every command's preflight), e.g. a teacher model that
        does not exist."""
        return []

    # -- training --------------------------------------------------------------------------------
    def pairs(self, examples: Sequence[Example], rationales: dict[str, list[str]], seq2seq: bool) -> list[Pair]:
        """The training pairs of `examples`; a method that learns from rationales skips questions
        without a kept one."""
        return [p for e in examples for p in self.train_pairs(e, rationales.get(e.id, []), seq2seq)
                if not self.uses_rationales or rationales.get(e.id)]

    def training(self, model, tok, seq2seq: bool, train: list[Example], val: list[Example],
                 rationales: dict[str, list[str]], *, seed: int) -> TrainingParts:
        """What the training loop trains: by default the student on this method's text pairs, with
        the validation loss of each `loss_groups` group logged beside the whole one."""
        tp = self.pairs(train, rationales, seq2seq)
        groups: dict[str, list[Pair]] = {}
        for e in val:
            for name, p in self.loss_groups(e, rationales.get(e.id, []), seq2seq):
                groups.setdefault(name, []).append(p)
        return TrainingParts(model, tp, self.pairs(val, rationales, seq2seq), len(tp), groups=groups)

    # -- inference -------------------------------------------------------------------------------
    def predict(self, model, tok, seq2seq: bool, examples: list[Example], *, max_new_tokens: int,
                batch_size: int, progress: Callable[[int], None] | None = None) -> list[Output]:
        """Greedy generation from `source` with this method's stop rule, then `parse`."""
        return self._generate_parse(model, tok, seq2seq, examples, [self.source(e, seq2seq) for e in examples],
                                    self.stop(), self.parse, max_new_tokens=max_new_tokens,
                                    batch_size=batch_size, progress=progress)

    @staticmethod
    def _generate_parse(model, tok, seq2seq, examples, prompts, stop, parse, *, max_new_tokens, batch_size,
                        progress=None) -> list[Output]:
        from .. import hf

        gens = hf.generate(model, tok, prompts, seq2seq=seq2seq, max_new_tokens=max_new_tokens, temperature=0.0,
                           batch_size=batch_size, stop=stop, markers=(SEP,), progress=progress)
        return [Output(g, parse(g.text, e)) for e, g in zip(examples, gens)]

    # -- hooks for methods with parts beyond the student ----------------------------------------
    def held_out_fraction(self) -> float:
        """Share of the training questions kept out of student training for `after_train`."""
        return 0.0

    def after_train(self, model, tok, seq2seq: bool, held_out: list[Example], model_dir: Path, *,
                    parts: TrainingParts, max_new_tokens: int, batch_size: int, reporter) -> dict:
        """Runs once the student is trained, before `model_dir` is moved into place: fit and save any
        extra parts there (`parts`: what `training` gave the loop). Returns facts for train_info.json."""
        return {}

    def load_extras(self, model_dir: Path, model) -> "Method":
        """The method ready to `predict` with the student saved in `model_dir`: itself, or, for a
        method with parts of its own, a copy holding what `after_train` saved there."""
        return self

    def holding(self, **parts: Any):
        """A copy of this method that holds `parts` (a trained student's own parts); this instance is
        left as it was, so one method object serves any number of runs."""
        bound = copy.copy(self)
        bound.__dict__.update(parts)
        return bound

    def metrics(self, preds: list[dict]) -> dict:
        """Figures of this method's own beyond accuracy (e.g. macro-F1), merged into metrics.json."""
        return {}

    def loss_groups(self, ex: Example, rationales: list[str], seq2seq: bool) -> list[tuple[str, Pair]]:
        """(group, pair) of a validation question whose loss training logs per group at every
        evaluation (`eval_loss_GROUP` in train_log.jsonl), e.g. by the kind of segment a step
        writes; none by default."""
        return []


def validate_options(cls: type[Method], options: dict | None) -> BaseModel:
    try:
        return cls.Options.model_validate(options or {})
    except ValidationError as e:
        probs = field_problems(e, "unknown option", lambda loc: f"`method_options.{cls.name}.{loc}`")
        known = ", ".join(cls.Options.model_fields) or "none"
        raise ConfigError(f"method {cls.name!r}: {probs} (options: {known})") from None


def answer_after_separator(text: str, ex: Example) -> str | None:
    """First answer candidate after the separator; if the student never wrote the separator,
    fall back to the last candidate anywhere in its text."""
    if SEP in text:
        got = extract(text.split(SEP, 1)[1], ex.kind, ex.choices, position="first")
        if got is not None:
            return got
    return extract(text, ex.kind, ex.choices, position="last")
