"""Run configuration: pydantic models that mirror the YAML one-to-one.

Precedence: defaults < YAML < `--set a.b=value` overrides. Unknown keys are errors; all problems
in a file are collected and reported together, each with its dotted path.
"""
from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .settings import KEEPS_WEIGHTS, Setting, Strict  # noqa: F401  (KEEPS_WEIGHTS: documented here)
from .tasks.sources import HELP as TASK_HELP
from .tasks.sources import SOURCES, SyntheticTask, TaskSource
from .teachers.backends import BACKENDS, ExactBackend
from .teachers.backends import HELP as TEACHER_HELP


_Strict = Strict


def _tagged(registry, field: str, default: str):
    """The config type of a plug-in section: the union of the registered option models, told apart by
    `field` (a missing one means `default`). A new plug-in joins by registering, not by editing this."""
    def tag(v: Any) -> str | None:
        return v.get(field, default) if isinstance(v, dict) else getattr(v, field, None)

    members = tuple(Annotated[cls, Tag(registry.key(cls))] for cls in registry.items())
    return Annotated[Union[members], Discriminator(tag)]  # type: ignore[valid-type]


def _known(registry, what: str, field: str, default: str, value: Any) -> Any:
    """An unknown source/backend named as one, with a did-you-mean, before the union tries its members."""
    from .registry import unknown_name

    if isinstance(value, dict):
        name = value.get(field, default)
        if not isinstance(name, str) or name not in registry:
            raise ValueError(f"`{what}.{field}`: {unknown_name(registry.kind, str(name), registry.names())}")
    return value


TeacherConfig = _tagged(BACKENDS, "backend", "exact")


class MixtureEntry(_Strict):
    """One task of a mixture. Examples are tagged with `name`; ids become `name/ID`."""

    task: "TaskConfig"
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]+$", description="tag and id prefix (default: the "
                             "task's name)")
    cap: int = Field(0, ge=0, description="at most this many training examples of this task (0 = all), a random "
                     "sample drawn with the mixture's task.seed")
    weight: float = Field(1.0, gt=0, description="training share: each training example is used `weight` times "
                          "(1.5: all once, half of them twice); the test split is never weighted")
    teacher: TeacherConfig | None = Field(None, description="this task's rationale source (default: the run's "
                                          "teacher), e.g. {backend: dataset} for human rationales")

    @property
    def label(self) -> str:
        return self.name or self.task.display_name

    @field_validator("task", mode="before")
    @classmethod
    def _task_known(cls, v):
        return _known(SOURCES, "task", "source", "synthetic", v)

    @field_validator("teacher", mode="before")
    @classmethod
    def _teacher_known(cls, v):
        return _known(BACKENDS, "teacher", "backend", "exact", v)

    @model_validator(mode="after")
    def _not_nested(self):
        if self.task.source == "mixture":
            raise ValueError("a mixture entry cannot itself be a mixture; list its tasks in this mixture")
        return self


@SOURCES.add
class MixtureTask(TaskSource):
    """Several tasks, one student (the CoT Collection's multi-task CoT tuning; tasks/mixture.py)."""

    source: Literal["mixture"] = "mixture"
    mixture: list[MixtureEntry] = Field(default_factory=list, description="the tasks, each with its own task "
                                        "config, cap, weight and (optionally) teacher")

    @model_validator(mode="after")
    def _entries(self):
        if not self.mixture:
            raise ValueError("task.source 'mixture' needs `task.mixture`: a list of {task: {...}, cap, weight}")
        labels = [e.label for e in self.mixture]
        twice = sorted({n for n in labels if labels.count(n) > 1})
        if twice:
            raise ValueError(f"task.mixture: the name(s) {twice} occur twice; give entries distinct `name`s")
        return self

    @property
    def display_name(self) -> str:
        return "mixture:" + "+".join(e.label for e in self.mixture)

    def problems(self) -> list[str]:
        return [f"task.mixture[{i}] ({e.label}): {p}" for i, e in enumerate(self.mixture) for p in e.task.problems()]

    def load(self):
        from .tasks import load_task
        from .tasks.mixture import load_mixture

        return load_mixture(self, load_task)

    def files(self) -> list[Path]:
        return [f for e in self.mixture for f in e.task.files()]

    def rationale_sources(self, teacher):
        return [(f"task.mixture[{i}] ({e.label})", e.label, e.teacher or teacher, e.task)
                for i, e in enumerate(self.mixture)]


TaskConfig = _tagged(SOURCES, "source", "synthetic")
# The defaults of settings that task and teacher sections had for every source and backend before each
# plug-in got its own options: a stamp written then holds them (runs.check_same ignores them).
RETIRED_DEFAULTS: dict[str, Any] = {
    "params": {}, "data_dir": None, "path": None, "test_path": None, "hf_train_split": "train",
    "hf_test_split": "test", "kind": None, "columns": {}, "mixture": [], "model": None, "base_url": None,
    "api_key_env": "OPENAI_API_KEY", "endpoint": "completions", "requests_per_minute": None,
    "tokens_per_minute": None, "use_n": False, "concurrency": 8, "max_retries": 8, "timeout_s": 60.0,
    "batch_size": 16, "cache": None,
}
MixtureEntry.model_rebuild()


class CurateConfig(_Strict):
    dedupe: bool = Field(True, description="drop repeated rationales of the same question")
    keep_truncated: bool = Field(False, description="keep rationales cut off by the token limit")
    answer_source: Literal["stage2", "rationale"] = Field(
        "stage2", description="where the teacher's answer is read: the stage-2 completion or the rationale")


class StudentConfig(_Strict):
    model: str = Field("preset:tiny", description="hub id, local path, preset:NAME (from scratch) or "
                       "pretrained:NAME (weights installed with a package: smollm2-135m, minilm-seq2seq, "
                       "minilm-causal, minilm-mlm)")
    layers: int | None = Field(None, ge=1, description="pretrained:NAME: keep this many layers, evenly spaced")
    tokenizer: Literal["byte", "bpe"] = Field("byte", description="preset:NAME students: byte-level (any text, "
                                             "no training) or a byte-level BPE trained on the run's training text")
    vocab_size: int = Field(2000, ge=8, description="tokenizer: bpe: vocabulary size (at least 263)")
    lora: "LoraSettings | None" = Field(None, description="train LoRA adapters (peft) instead of every weight; "
                                         "the student is saved merged")
    trust_remote_code: bool = False

    def fingerprint(self) -> dict:
        # The vocabulary size shapes only a BPE the run trains itself.
        return self.model_dump(mode="json", exclude=set() if self.tokenizer == "bpe" else {"vocab_size"})


class LoraSettings(_Strict):
    r: int = Field(8, ge=1, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling (lora_alpha)")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="module names to adapt (default: the attention "
                                             "projections the model has)")


StudentConfig.model_rebuild()


# Training settings by kind of student, applied under the keys a config leaves unset.
# "pretrained" was chosen on validation data only (bench/pretrained_recipe.py; docs/config.md). Its rate is
# constant after warm-up, so a 20-epoch run repeats a 10-epoch one and goes on: with the best checkpoint
# kept, more epochs cannot end at a higher validation loss, and 20 ended lower on Coin Flip and Last Letter (README).
# "pretrained_lm" (pretrained language models: SmolLM2, hub ids, local folders) was chosen the same way
# (bench/pretrained_recipe.py --student pretrained:smollm2-135m; docs/config.md).
RECIPES: dict[str, dict[str, Any]] = {
    "scratch": {"learning_rate": 2e-3, "warmup_steps": 100, "batch_size": 32},
    "pretrained": {"learning_rate": 1e-4, "new_parts_lr_scale": 10.0, "warmup_steps": 20, "batch_size": 16,
                   "weight_decay": 0.01, "epochs": 20, "eval_every": 25},
    "pretrained_lm": {"learning_rate": 1e-4, "warmup_steps": 10, "batch_size": 8, "weight_decay": 0.01,
                      "epochs": 3, "eval_every": 20, "bf16": "native"},
}
RECIPE_HELP = {
    "scratch": "from-scratch students",
    "pretrained": "MiniLM warm starts that add new parts",
    "pretrained_lm": "pretrained language models: pretrained:smollm2-135m, hub ids and local folders",
}


def recipe_summary(name: str | None) -> str:
    """One line for `validate`: the recipe a run trains with and what it sets."""
    if name is None:
        return "train.recipe: none (the from-scratch defaults, unless the config sets them)"
    keys = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in RECIPES[name].items())
    return f"train.recipe: {name} ({RECIPE_HELP[name]}): {keys}; keys the config sets win"


class TrainConfig(_Strict):
    recipe: Literal["scratch", "pretrained", "pretrained_lm"] | None = Field(
        None, description="fill unset keys from a recipe: scratch (from-scratch presets), pretrained (MiniLM "
        "warm starts: lr 1e-4, new parts at 10x, 20 epochs, batch 16) or pretrained_lm (pretrained language "
        "models: SmolLM2, hub ids, local folders); keys set in the config win. Default: by the student")
    epochs: float | None = Setting(None, gt=0, description="passes over the training pairs; sets max_steps from the "
                                 "data (pairs x epochs / batch_size), so methods with more pairs get more steps")
    max_steps: int = Setting(1000, ge=1, description="optimizer steps (the budget; equal across methods)")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(100, ge=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning rate after warm-up: constant, or decaying to 0 at the last step (linear, "
        "cosine); constant keeps a shorter run a prefix of a longer one, so validation can pick among them")
    weight_decay: float = Field(0.0, ge=0)
    new_parts_lr_scale: float = Field(1.0, gt=0, description="learning-rate multiplier for the parts a warm-started "
                                      "student adds new (pretrained:minilm-seq2seq's cross-attention and head transform)")
    val_fraction: float = Field(0.1, ge=0.0, lt=0.9, description="share of training questions held out for checkpoint choice")
    eval_every: int = Setting(250, ge=1, description="steps between validation-loss checks")
    max_length: int = Field(1024, ge=8, description="tokens per training sequence; longer ones are skipped and counted")
    seed: int = 0
    threads: int | None = Setting(None, description="torch CPU threads (default: all cores)")
    packing: bool | None = Setting(None, description="decoder-only students: a batch becomes one padding-free row "
                                 "(exact: same loss as the padded batch); default on where the model supports it")
    group_by_length: bool | None = Field(None, description="batch examples of similar length to cut padding; "
                                         "default on for students that are not packed (encoder-decoder)")
    bf16: bool | Literal["native"] | None = Setting(
        None, description="bf16 autocast; null: on with a GPU that supports it, off on the CPU (no gain for small "
        "students, docs/training.md); native: on wherever the hardware computes bf16 (a bf16 GPU, or a CPU with "
        "AVX512-BF16 or AMX), as the pretrained_lm recipe sets it")
    compile: bool = Setting(False, description="torch.compile the student (off by default: on the CPU compiling "
                          "costs more than it saves on runs this size)")
    resume: bool = Setting(True, description="resume from the last checkpoint in the output folder")
    report_to: list[str] = Setting(default_factory=list, description="also log training to these trackers "
                                 "(transformers' names: tensorboard, wandb, mlflow, ...; each needs its package, e.g. "
                                 "pip install 'cotdistill[tensorboard]'); TensorBoard writes to METHOD/logs, W&B "
                                 "names the run OUT/METHOD. train_log.jsonl is written either way")
    keep_checkpoints: bool = Setting(True, description="keep the Trainer checkpoints (weights and optimizer state) "
                                   "once training has finished and METHOD/model is saved; false deletes them (a "
                                   "MiniLM student's are about 1 GB): a rerun then reuses METHOD/model, and a larger "
                                   "step budget trains again from the start instead of resuming")

    @model_validator(mode="before")
    @classmethod
    def _apply_recipe(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("recipe") in RECIPES:
            recipe = dict(RECIPES[data["recipe"]])
            if "max_steps" in data:  # a step budget the config names wins over the recipe's epochs
                recipe.pop("epochs", None)
            data = {**recipe, **data}
        return data

    def steps_for(self, n_pairs: int) -> int:
        """The step budget: `epochs` over `n_pairs` when set, else `max_steps`."""
        if self.epochs is None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * n_pairs / self.batch_size))




class EvalConfig(_Strict):
    max_new_tokens: int | None = Field(
        None, ge=1, description="generation limit; default 1.5 x the longest training target (so a rationale fits)")
    batch_size: int = Field(128, ge=1)


class RunConfig(_Strict):
    task: TaskConfig = Field(default_factory=SyntheticTask, description=TASK_HELP)
    teacher: TeacherConfig = Field(default_factory=ExactBackend, description=TEACHER_HELP)
    curate: CurateConfig = Field(default_factory=CurateConfig)
    methods: list[str] = Field(default_factory=lambda: ["direct", "ft_cot"], min_length=1)
    method_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-method options, e.g. {post: {explain: true}, step_by_step: {alpha: 0.5}}")
    student: StudentConfig = Field(default_factory=StudentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    out: str = "runs/run"

    @model_validator(mode="before")
    @classmethod
    def _pretrained_recipe(cls, data: Any) -> Any:
        """A student with pretrained weights trains with a pretrained recipe unless the config names one:
        the from-scratch defaults (lr 2e-3, 100 warm-up steps) would wreck it."""
        if isinstance(data, dict):
            student, train = data.get("student"), data.get("train")
            model = student.get("model", "preset:tiny") if isinstance(student, dict) else \
                "preset:tiny" if student is None else None
            recipe = default_recipe(model) if isinstance(model, str) else None
            if recipe and (train is None or isinstance(train, dict)) and "recipe" not in (train or {}):
                data = {**data, "train": {**(train or {}), "recipe": recipe}}
        return data

    @field_validator("task", mode="before")
    @classmethod
    def _task_known(cls, v):
        if isinstance(v, dict) and v.get("mixture") and v.get("source", "synthetic") != "mixture":
            raise ValueError(f"`task.mixture` is set but task.source is {v.get('source', 'synthetic')!r}; use "
                             f"task.source: mixture")
        return _known(SOURCES, "task", "source", "synthetic", v)

    @field_validator("teacher", mode="before")
    @classmethod
    def _teacher_known(cls, v):
        return _known(BACKENDS, "teacher", "backend", "exact", v)

    @model_validator(mode="after")
    def _methods_known(self):
        from .methods import METHODS, validate_options

        for m in self.methods:
            METHODS.get(m)  # raises "did you mean"
        for m, opts in self.method_options.items():
            validate_options(METHODS.get(m), opts)
        return self

    def method(self, name: str):
        """The method `name` with its `method_options`."""
        from .methods import get_method

        return get_method(name, self.method_options.get(name))


def default_recipe(model: str) -> str | None:
    """The recipe a student trains with when the config names none: none (the from-scratch defaults) for
    presets, `pretrained` for MiniLM warm starts, `pretrained_lm` for every other pretrained model."""
    if model.startswith("preset:"):
        return None
    if model.startswith("pretrained:"):
        from .students.pretrained import is_language_model

        return "pretrained_lm" if is_language_model(model.split(":", 1)[1]) else "pretrained"
    return "pretrained_lm"  # a hub id or a local folder: weights someone trained


def _coerce(item: str, value: str) -> Any:
    """`--set` values are YAML scalars: 3 -> int, true -> bool, null -> None, [a,b] -> list."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item}: the value is not valid YAML ({getattr(e, 'problem', e)}); "
                          f"quote it, e.g. --set '{item.split('=', 1)[0]}=\"...\"'") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict[str, str]:
    """Applies `key.sub=value` overrides to `data` in place; returns {dotted key: the override as
    given}, so that an error in an overridden value is reported against the `--set`, not the file."""
    given: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: must look like key.sub=value")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {item}: empty name in key {key.strip()!r}")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {p!r} is not a section")
        node[parts[-1]] = _coerce(item, value)
        given[".".join(parts)] = item
    return given


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    data: dict = {}
    where = "defaults"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.exists():
            raise ConfigError(f"{p}: config file not found")
        if not p.is_file():
            raise ConfigError(f"{p}: is a directory, not a config file (pass a YAML file such as {p / 'config.yaml'})")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}); is this a YAML config?") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{p}{line}: invalid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: top level must be a mapping of sections")
    given = apply_overrides(data, overrides or [])
    return validate_config(data, where, given)


# Sections whose type is a union of plug-in option models: {key: (registry, tag field)}.
_PLUGIN_SECTIONS = {"task": (SOURCES, "source"), "teacher": (BACKENDS, "backend")}


def _plain(loc: tuple) -> tuple[tuple, dict[int, str]]:
    """`loc` without the tag pydantic puts after a plug-in section (`task.file.path` -> `task.path`),
    and {position of the section: its tag}."""
    out: list = []
    tags: dict[int, str] = {}
    i = 0
    while i < len(loc):
        out.append(loc[i])
        section = _PLUGIN_SECTIONS.get(loc[i]) if isinstance(loc[i], str) else None
        if section and i + 1 < len(loc) and isinstance(loc[i + 1], str) and loc[i + 1] in section[0]:
            tags[len(out) - 1] = loc[i + 1]
            i += 1
        i += 1
    return tuple(out), tags


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside `X | None`, `list[X]` or `X`."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _field_names(loc: tuple, tags: dict[int, str]) -> list[str]:
    """The config keys allowed beside `loc[-1]` (for a did-you-mean on an unknown key)."""
    model: Any = RunConfig
    for i, part in enumerate(loc[:-1]):
        if isinstance(part, int):  # a list item: the same model
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _PLUGIN_SECTIONS[part][0].get(tags[i]) if i in tags else _model_in(field.annotation)
    return list(getattr(model, "model_fields", {}))


# Names users bring from other trainers (TRL, nanoGPT, torchtune) that difflib cannot match.
_ALIASES = {"lr": "learning_rate", "bs": "batch_size", "batch": "batch_size", "steps": "max_steps",
            "num_steps": "max_steps", "train_steps": "max_steps", "max_len": "max_length", "warmup": "warmup_steps",
            "wd": "weight_decay", "model_name": "model", "model_name_or_path": "model", "n": "n_samples"}


def _near_key(key: str, allowed: list[str]) -> str | None:
    if _ALIASES.get(key) in allowed:
        return _ALIASES[key]
    near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
    return near[0] if near else None


def _origin(loc: tuple, given: dict[str, str], where: str) -> str:
    """Where a bad value came from: the `--set` that set it (or a section above it), else the file."""
    for i in range(len(loc), 0, -1):
        key = ".".join(str(p) for p in loc[:i])
        if key in given:
            return f"--set {given[key]}"
    under = [item for key, item in given.items() if key.startswith(".".join(str(p) for p in loc) + ".")]
    return f"--set {', --set '.join(under)}" if loc and under else where


def validate_config(data: dict, where: str = "config", given: dict[str, str] | None = None) -> RunConfig:
    given = given or {}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc, tags = _plain(tuple(err["loc"]))
            dotted = ".".join(str(p) for p in loc) or "<top>"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                near = _near_key(str(loc[-1]), _field_names(loc, tags))
                prefix = ".".join(str(p) for p in loc[:-1])
                hint = f"; did you mean `{prefix + '.' if prefix else ''}{near}`?" if near else ""
                owner = len(loc) - 2
                what = "not a config field"
                if owner in tags:  # a plug-in's section: say which plug-ins have the key instead
                    registry, field = _PLUGIN_SECTIONS[loc[owner]]
                    what = f"not an option of {loc[owner]}.{field} {tags[owner]!r}"
                    has = [n for n in registry.names() if loc[-1] in registry.get(n).model_fields]
                    if has:
                        what, hint = f"{what}; {field}s with it: {', '.join(has)}", ""
                msg = f"unknown key ({what}){hint}"
            msg = msg.removeprefix("Value error, ")
            lines.append(f"  {_origin(loc, given, where)}: `{dotted}`: {msg}")
        raise ConfigError(f"{len(lines)} problem(s) in config:\n" + "\n".join(lines)) from None
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def config_defaults(section: BaseModel) -> dict:
    """The JSON defaults of a config section's optional fields: what a stamp written before a
    setting existed implies for it. A setting whose default changes what older runs did names
    their behaviour as `json_schema_extra={"before_added": value}`, so their folders are refused
    instead of reused."""
    to_json = TypeAdapter(Any)

    def before(f):
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        return extra["before_added"] if "before_added" in extra else f.get_default(call_default_factory=True)

    return {name: to_json.dump_python(before(f), mode="json")
            for name, f in type(section).model_fields.items() if not f.is_required()}


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
