"""A run folder: where each stage's files live, and the stamps that keep one folder one experiment.

    OUT/config.yaml                 the config the folder was made with
    OUT/data/{train,test}.jsonl     the task's examples; data/task.json and data/sources.json stamp them
    OUT/rationales.jsonl            the teacher's records (teacher_summary.json, teacher_cache.sqlite)
    OUT/curated.jsonl               the kept ones (curation_stats.json)
    OUT/tokenizer/                  student.tokenizer: bpe, shared by every method of the run
    OUT/METHOD/                     one method: checkpoints/, model/, train_info.json, train_log.jsonl,
                                    train_fingerprint.json, predictions.jsonl, metrics.json, evaluation.json;
                                    evaluation.parts/ while an evaluation is under way (resumable)
    OUT/summary.json, report.md,    every method side by side; report.html also holds the rationale
        report.html                 browser (report/html.py)

Everything that reads or writes these paths asks this module for them (the pipeline, serve,
unseen, the CLI and the benches), so the layout is written down once.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from .config import RETIRED_DEFAULTS, config_defaults
from .errors import ConfigError, CotDistillError, DataError
from .io import read_json, read_jsonl_list, write_json, write_jsonl

log = logging.getLogger(__name__)


class MethodFolder:
    """OUT/METHOD: one method's training and evaluation."""

    def __init__(self, root: Path):
        from .students.train import CHECKPOINTS, LOG_FILE, LOGS_DIR

        self.root = root
        self.name = root.name
        self.checkpoints = root / CHECKPOINTS
        self.model = root / "model"
        self.model_partial = root / "model.partial"  # saved whole, then moved into place as model/
        self.train_info = root / "train_info.json"
        self.train_log = root / LOG_FILE
        self.fingerprint = root / "train_fingerprint.json"
        self.predictions = root / "predictions.jsonl"
        self.metrics = root / "metrics.json"
        self.evaluation = root / "evaluation.json"  # what a finished evaluation was made from
        self.evaluation_parts = root / "evaluation.parts"  # an unfinished one, a file per chunk of questions
        self.logs = root / LOGS_DIR  # TensorBoard

    def holds_training(self) -> bool:
        """Whether anything trained is here (a checkpoint, a model, its training info)."""
        ck = self.checkpoints
        return (self.model.exists() or self.train_info.exists()
                or (ck.is_dir() and any(p.name.startswith("checkpoint-") for p in ck.iterdir())))

    def check_fingerprint(self, fingerprint: dict, defaults: dict) -> None:
        """Checkpoints only resume a run of the same student, data and hyper-parameters: stamps the
        folder, or refuses one stamped otherwise. A stamp from a run that failed before its first
        checkpoint guards nothing and is replaced."""
        if not self.holds_training():
            self.fingerprint.unlink(missing_ok=True)
        check_same(self.fingerprint, fingerprint, "training setup", defaults=defaults, retired=RETIRED_DEFAULTS)

    def forget_training(self) -> None:
        """train.resume: false: start over (checkpoints and their stamp go; a finished model stays
        until the new one replaces it)."""
        import shutil

        shutil.rmtree(self.checkpoints, ignore_errors=True)
        self.fingerprint.unlink(missing_ok=True)

    def trained_before(self, max_steps: int, resume: bool) -> dict | None:
        """The train_info of a finished training whose saved model covers the step budget, when no
        checkpoint went further (checkpoints kept or deleted by train.keep_checkpoints: false); None
        means train (or resume) as usual. Reusing it spares a rerun the reload of the best checkpoint,
        the save and the method's after-training fit, and keeps the model's files (and so their
        evaluation) as they were."""
        from .students.train import last_checkpoint, step_of

        if not resume or not (self.model.is_dir() and self.train_info.exists()):  # model/ is moved into place whole
            return None
        info, last = read_json(self.train_info), last_checkpoint(self.checkpoints)
        if info.get("steps", 0) < max_steps:
            if last is None:
                log.warning("%s: the model saved after %s steps has no checkpoint to resume from "
                            "(train.keep_checkpoints: false); training %d steps from the start",
                            self.root, info.get("steps"), max_steps)
            return None
        if last is not None and step_of(last) > info["steps"]:  # trained on after this model was saved
            return None
        log.info("%s: training already finished at step %s: reusing its model", self.root, info["steps"])
        return info

    def evaluated_before(self, stamp: dict) -> tuple[list[dict], dict] | None:
        """(predictions, metrics) of a finished evaluation with the same stamp, else None."""
        files = [self.evaluation, self.predictions, self.metrics]
        if not all(f.exists() for f in files):
            return None
        try:
            if read_json(self.evaluation) != stamp:
                return None
            return read_jsonl_list(self.predictions), read_json(self.metrics)
        except (OSError, ValueError, CotDistillError):  # unreadable: evaluate again rather than fail the rerun
            return None

    def saved_evaluation_parts(self, stamp: dict) -> dict[int, list[dict]]:
        """{chunk index: predictions} saved by an interrupted evaluation with the same stamp. Parts
        of another evaluation (another model, questions or settings), or unreadable ones, are
        deleted; the stamp is written for the parts to come."""
        parts, found = self.evaluation_parts, {}
        try:
            if parts.exists():
                if read_json(parts / "stamp.json") != stamp:
                    raise ValueError("parts of another evaluation")
                found = {int(f.stem): read_jsonl_list(f) for f in parts.glob("[0-9]*.jsonl")}
        except (OSError, ValueError, CotDistillError):  # evaluate those questions again rather than fail
            self.drop_evaluation_parts()
            found = {}
        if not parts.exists():
            write_json(parts / "stamp.json", stamp)
        return found

    def save_evaluation_part(self, index: int, rows: list[dict]) -> None:
        write_jsonl(self.evaluation_parts / f"{index:05d}.jsonl", rows)  # whole or not at all (atomic)

    def drop_evaluation_parts(self) -> None:
        import shutil

        shutil.rmtree(self.evaluation_parts, ignore_errors=True)

    def max_target_tokens(self) -> int:
        """The longest training target of the trained student (0 when unknown)."""
        return read_json(self.train_info).get("max_target_tokens", 0) if self.train_info.exists() else 0

    def trained_model(self, model_dir: str | Path | None = None) -> Path:
        """The folder of the trained student: `model_dir` (e.g. `--model`), else METHOD/model."""
        if model_dir is not None and not Path(model_dir).exists():
            raise DataError(f"--model {model_dir}: no such folder")
        path = Path(model_dir or self.model)
        if not path.exists():
            raise DataError(f"{self.name!r} is not trained yet ({path} does not exist): train it first with "
                            f"`cotdistill train CONFIG --method {self.name}` (or `cotdistill run CONFIG`)")
        return path


class RunFolder:
    """OUT: the files every method of a run shares, and a MethodFolder per method."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.data = self.root / "data"
        self.train = self.data / "train.jsonl"
        self.test = self.data / "test.jsonl"
        self.task_stamp = self.data / "task.json"
        self.sources_stamp = self.data / "sources.json"
        self.rationales = self.root / "rationales.jsonl"
        self.teacher_summary = self.root / "teacher_summary.json"
        self.teacher_cache = self.root / "teacher_cache.sqlite"
        self.curated = self.root / "curated.jsonl"
        self.curation_stats = self.root / "curation_stats.json"
        self.tokenizer = self.root / "tokenizer"
        self.tokenizer_stamp = self.tokenizer / "cotdistill_tokenizer.json"
        self.summary = self.root / "summary.json"
        self.report = self.root / "report.md"
        self.report_html = self.root / "report.html"

    def method(self, name: str) -> MethodFolder:
        return MethodFolder(self.root / name)

    def model(self, method: str) -> Path:
        """OUT/METHOD/model: a trained student."""
        return self.method(method).model

    def has_data(self) -> bool:
        return self.train.exists() and self.test.exists()

    def stage(self, path: Path, required: tuple[str, ...] = ("id", "rationale")) -> list[dict]:
        """The records an earlier stage wrote (rationales, curated)."""
        if not path.exists():
            raise DataError(f"{path}: not found; run the earlier stage first (cotdistill run / generate / curate)")
        return read_jsonl_list(path, required=required)

    def check_data(self, task) -> None:
        """OUT/data holds this task's examples: refuse it for another task, or once a data file it
        was read from has changed."""
        check_same(self.task_stamp, task.model_dump(mode="json"), "task", defaults=config_defaults(task),
                   retired=RETIRED_DEFAULTS)
        self.check_sources(task.files())

    def stamp_data(self, task) -> None:
        """What OUT/data was made from: the task section and its data files' digests."""
        write_json(self.sources_stamp, file_digests(task.files()))
        write_json(self.task_stamp, task.model_dump(mode="json"))

    def check_sources(self, files: list[Path]) -> None:
        """OUT/data is a copy of the task's files: refuse to go on from it once a file it was made
        from has changed (a fixed label, say), rather than train on the stale copy unawares."""
        stamp = self.sources_stamp
        if not stamp.exists():  # a folder written before sources were stamped
            return
        before, now = read_json(stamp), file_digests(files)
        changed = sorted(p for p in before if p in now and before[p] != now[p])
        if changed:
            raise ConfigError(f"{', '.join(changed)} changed since {stamp.parent} was made from it; the run folder's "
                              f"copy is stale: delete {stamp.parent} (and any trained method folders) to load the file "
                              f"again, or use a new `out` folder")


def file_digests(files: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def check_same(stamp: Path, current: dict, what: str, defaults: dict | None = None,
               retired: dict | None = None) -> None:
    """A run folder holds one experiment: refuse to mix artifacts made under another config. A key
    the stamp lacks (a setting added since it was written) matches its default, at any depth; a key
    only the stamp has (a setting this setup no longer has) is ignored while it holds the default
    `retired` gives it."""
    if stamp.exists():
        before = _with_defaults(_without_retired(read_json(stamp), current, retired or {}), current, defaults or {})
        if before != current:
            diff = _differences(before, current)
            raise ConfigError(
                f"{stamp.parent} holds artifacts of a different {what} (differs in: {', '.join(diff)}); "
                f"use a new `out` folder, delete this one, or set train.resume=false to retrain"
            )
    else:
        write_json(stamp, current)


def _differences(before: dict, current: dict, prefix: str = "") -> list[str]:
    """The dotted names of the settings that differ (train.lr_schedule, not just train)."""
    out = []
    for k in sorted(set(before) | set(current)):
        a, b = before.get(k), current.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def _without_retired(before, current, retired: dict):
    """`before` without the keys `current` lacks whose value is their `retired` default (nested alike,
    through lists of sections too)."""
    if isinstance(before, dict) and isinstance(current, dict):
        return {k: _without_retired(v, current[k], retired) if k in current else v for k, v in before.items()
                if k in current or k not in retired or v != retired[k]}
    if isinstance(before, list) and isinstance(current, list) and len(before) == len(current):
        return [_without_retired(b, c, retired) for b, c in zip(before, current)]
    return before


def _with_defaults(before: dict, current: dict, defaults: dict) -> dict:
    """`before` with the keys it lacks, and `current` has, taken from `defaults` (nested alike)."""
    out = dict(before)
    for k, d in defaults.items():
        if k not in current:
            continue
        if k not in out:
            out[k] = d
        elif isinstance(d, dict) and isinstance(out[k], dict) and isinstance(current[k], dict):
            out[k] = _with_defaults(out[k], current[k], d)
    return out
