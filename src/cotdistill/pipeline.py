"""The pipeline: tasks -> teacher rationales -> curation -> method format -> training ->
evaluation -> report. Each stage reads and writes files under the run folder, so stages can run
one at a time from the CLI and a rerun skips what is already complete."""
from __future__ import annotations

import contextlib
import logging
import random
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Protocol

from . import __version__
from .config import RunConfig, config_defaults, dump_config
from .errors import ConfigError, CotDistillError, DataError
from .io import ordinary_modes, read_jsonl_list, write_json, write_jsonl
from .tasks.schema import Example

log = logging.getLogger(__name__)
EVAL_STAMP = "evaluation.json"  # beside predictions.jsonl: what a finished evaluation was made from


class Reporter(Protocol):
    def task(self, desc: str, total: int | None) -> contextlib.AbstractContextManager[Callable[[int], None]]: ...


class SilentReporter:
    @contextlib.contextmanager
    def task(self, desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield lambda n, **kw: None


def _git_rev() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except Exception:
        return None


def provenance(cfg: RunConfig) -> dict:
    return {"cotdistill_version": __version__, "git_rev": _git_rev()}


class Run:
    """One run folder and the stages that fill it."""

    def __init__(self, cfg: RunConfig, reporter: Reporter | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.rep = reporter or SilentReporter()

    # -- stage 1: data ---------------------------------------------------------------------------
    def data(self) -> tuple[list[Example], list[Example]]:
        from .tasks import load_task

        tr, te = self.out / "data/train.jsonl", self.out / "data/test.jsonl"
        stamp = self.out / "data/task.json"
        sources = self.out / "data/sources.json"
        if tr.exists() and te.exists():
            _check_same(stamp, self.cfg.task.model_dump(mode="json"), "task", defaults=config_defaults(self.cfg.task))
            _check_sources(sources, self.cfg.task)
            return self._read_examples(tr), self._read_examples(te)
        train, test = load_task(self.cfg.task)
        write_jsonl(te, [e.model_dump(mode="json") for e in test])
        write_jsonl(tr, [e.model_dump(mode="json") for e in train])
        write_json(sources, _source_digests(self.cfg.task))
        write_json(stamp, self.cfg.task.model_dump(mode="json"))
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(dump_config(self.cfg))
        return train, test

    @staticmethod
    def _read_examples(path: Path) -> list[Example]:
        return [Example.parse(r, f"{path}:{i + 1}") for i, r in enumerate(read_jsonl_list(path))]

    # -- stage 2: teacher ------------------------------------------------------------------------
    def generate(self, train: list[Example]) -> list[dict]:
        from .teachers import build_prompting, build_teacher
        from .teachers.generate import generate_rationales, n_requests

        path = self.out / "rationales.jsonl"
        records, summaries = [], {}
        for label, t, task, exs in self._teacher_groups(train):
            teacher = build_teacher(t, task, self.out)
            prompting = build_prompting(t, task.name)
            total = n_requests(len(exs), t.n_samples, prompting.two_stage)
            try:
                with self.rep.task(f"teacher ({t.backend}) rationales{f' for {label}' if label else ''}", total) as adv:
                    records += generate_rationales(
                        exs, teacher, prompting, n_samples=t.n_samples, temperature=t.temperature,
                        max_tokens=t.max_tokens, answer_max_tokens=t.answer_max_tokens, seed=t.seed, progress=adv)
            finally:
                teacher.close()
            if hasattr(teacher, "summary"):
                summaries[label] = teacher.summary()
        if summaries:
            write_json(self.out / "teacher_summary.json", summaries[None] if list(summaries) == [None] else summaries)
        write_jsonl(path, records)
        return records

    def _teacher_groups(self, train: list[Example]):
        """(label, teacher config, task config, examples) per rationale source: the run's teacher
        for one task; for a mixture, each entry's own teacher (default the run's) on its examples."""
        from .tasks.mixture import task_of

        task = self.cfg.task
        if task.source != "mixture":
            yield None, self.cfg.teacher, task, train
            return
        for entry in task.mixture:
            exs = [e for e in train if task_of(e) == entry.label]
            if exs:
                yield entry.label, entry.teacher or self.cfg.teacher, entry.task, exs

    # -- stage 3: curation -----------------------------------------------------------------------
    def curate(self, records: list[dict]) -> list[dict]:
        from .curate import curate

        c = self.cfg.curate
        kept, stats = curate(records, dedupe=c.dedupe, keep_truncated=c.keep_truncated, answer_source=c.answer_source)
        write_jsonl(self.out / "curated.jsonl", kept)
        write_json(self.out / "curation_stats.json", stats.as_dict())
        log.info("curation: kept %d of %d samples; dropped %s", stats.kept, stats.samples, dict(stats.dropped))
        if not kept:
            why = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common()) or "no rationales"
            raise DataError(f"curation kept 0 of {stats.samples} teacher rationales ({why}; details in "
                            f"{self.out / 'curation_stats.json'}): check task.kind and the teacher's answers in "
                            f"{self.out / 'rationales.jsonl'}")
        return kept

    def load_stage(self, name: str) -> list[dict]:
        path = self.out / name
        if not path.exists():
            raise DataError(f"{path}: not found; run the earlier stage first (cotdistill run / generate / curate)")
        return read_jsonl_list(path, required=("id", "rationale"))

    # -- stage 4: training -----------------------------------------------------------------------
    def split_val(self, train: list[Example]) -> tuple[list[Example], list[Example]]:
        return _split(train, self.cfg.train.val_fraction, self.cfg.train.seed)

    def check_training_setup(self, method_name: str) -> None:
        """Checkpoints only resume a run of the same student, data and hyper-parameters (the step
        budget may grow): stamps METHOD/train_fingerprint.json, or refuses a folder stamped otherwise."""
        # Settings that leave the weights alone (packing is exact; threads, trackers) never enter; a
        # stamp written before a setting existed is read with that setting's default, so such folders
        # still resume.
        cfg, method = self.cfg, self.cfg.method(method_name)
        fingerprint = {
            "student": cfg.student.model_dump(mode="json", exclude=set() if cfg.student.tokenizer == "bpe" else {"vocab_size"}),
            "curate": cfg.curate.model_dump(mode="json"),
            "teacher": cfg.teacher.model_dump(mode="json", exclude={"concurrency", "max_retries", "timeout_s", "batch_size", "cache"}),
            "train": cfg.train.model_dump(mode="json", exclude={"max_steps", "epochs", "resume", "threads", "eval_every", "packing",
                                                                "bf16", "compile", "keep_checkpoints",
                                                                "report_to"}),
            "method_options": method.training_options()}
        defaults = {k: config_defaults(method.opts if k == "method_options" else getattr(cfg, k)) for k in fingerprint}
        mdir = self.out / method_name
        if not _holds_training(mdir):  # a stamp from a run that failed before its first checkpoint guards nothing
            (mdir / "train_fingerprint.json").unlink(missing_ok=True)
        _check_same(mdir / "train_fingerprint.json", fingerprint, "training setup", defaults=defaults)

    def train(self, method_name: str, train: list[Example], curated: list[dict]) -> dict:
        from .students import load_student
        from .students.train import LOG_FILE, train_student

        method = self.cfg.method(method_name)
        mdir = self.out / method_name
        if not self.cfg.train.resume:
            shutil.rmtree(mdir / "checkpoints", ignore_errors=True)
            (mdir / "train_fingerprint.json").unlink(missing_ok=True)
        self.check_training_setup(method_name)
        model, tok, seq2seq = load_student(self.cfg.student.model, self.cfg.student.trust_remote_code,
                                           seed=self.cfg.train.seed, layers=self.cfg.student.layers,
                                           tokenizer=self.student_tokenizer(train, curated))
        if self.cfg.student.lora:
            from .checks import own_module_problem
            from .students.lora import add_lora

            if problem := own_module_problem([method_name]):
                raise ConfigError(problem)
            model = add_lora(model, self.cfg.student.lora)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        by_q: dict[str, list[str]] = {}
        for r in curated:
            by_q.setdefault(r["id"], []).append(r["rationale"])
        tr, va = self.split_val(train)
        # A method's own held-out questions (adaptive: route labels) never reach student training.
        held: list[Example] = []
        frac = method.held_out_fraction()
        if frac > 0:
            if frac + self.cfg.train.val_fraction >= 0.9:
                raise ConfigError(f"{method_name}: held-out share {frac} plus train.val_fraction "
                                  f"{self.cfg.train.val_fraction} leaves under 10% of the questions for training")
            tr, held = _split(tr, frac * len(train) / max(1, len(tr)), self.cfg.train.seed + 1)

        def pairs(exs):
            return [p for e in exs for p in method.train_pairs(e, by_q.get(e.id, []), seq2seq)
                    if not method.uses_rationales or by_q.get(e.id)]

        if method.owns_training:  # the method owns features and loss: train its module in the shared loop
            n_items = len(pairs(tr)) if method.uses_rationales else len(tr)
            tcfg = self.cfg.train.model_copy(update={"max_steps": self.cfg.train.steps_for(n_items)})
            if done := _trained_before(mdir, tcfg):
                return done
            module = method.build(model, tok, tr, seed=self.cfg.train.seed, rationales=by_q, seq2seq=seq2seq)
            with self.rep.task(f"train {method_name}", tcfg.max_steps) as adv:
                res = train_student(module, tok, seq2seq, tr, va, tcfg, mdir, progress=adv, encode=method.encode,
                                    collator=method.collator(tok))
        else:
            train_pairs, val_pairs = pairs(tr), pairs(va)
            tcfg = self.cfg.train.model_copy(update={"max_steps": self.cfg.train.steps_for(len(train_pairs))})
            if done := _trained_before(mdir, tcfg):
                return done
            groups: dict[str, list] = {}
            for e in va:
                for name, p in method.loss_groups(e, by_q.get(e.id, []), seq2seq):
                    groups.setdefault(name, []).append(p)
            with self.rep.task(f"train {method_name}", tcfg.max_steps) as adv:
                res = train_student(model, tok, seq2seq, train_pairs, val_pairs, tcfg, mdir, progress=adv,
                                    groups=groups)
        from . import dist

        if not dist.is_main():  # another training process: the main one saves
            return {"steps": res.steps, "train_pairs": res.train_pairs, "best_step": res.best_step}
        from .students.lora import merged

        model = merged(model)  # LoRA: saved with the adapters folded in, so it loads like any model
        tmp = mdir / "model.partial"  # saved whole, then moved into place: never a half-written model
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "cotdistill.yaml").write_text(dump_config(self.cfg))
        extra = method.after_train(model, tok, seq2seq, held + va, tmp,
                                   max_new_tokens=self._max_new_tokens(res.max_target_tokens),
                                   batch_size=self.cfg.eval.batch_size, reporter=self.rep)
        ordinary_modes(tmp)
        shutil.rmtree(mdir / "model", ignore_errors=True)
        tmp.rename(mdir / "model")
        info = {"method": method_name, "steps": res.steps, "train_pairs": res.train_pairs, "val_pairs": res.val_pairs,
                "held_out_questions": len(held), "skipped_overlong": res.skipped_overlong,
                "best_val_loss": res.best_val_loss, "best_step": res.best_step,
                "max_target_tokens": res.max_target_tokens, "tokens_per_example": res.tokens_per_example,
                "trainable_parameters": trainable,
                **extra, **provenance(self.cfg)}
        write_json(mdir / "train_info.json", info)
        write_jsonl(mdir / LOG_FILE, res.history)
        if not self.cfg.train.keep_checkpoints:  # model/ and train_info.json are written: nothing needs them now
            shutil.rmtree(mdir / "checkpoints", ignore_errors=True)
        return info

    def student_tokenizer(self, train: list[Example], curated: list[dict]):
        """`student.tokenizer: bpe`: one BPE for every method of the run, trained once on its
        training questions, rationales and answers (never the test split) and kept in OUT/tokenizer."""
        s = self.cfg.student
        if s.tokenizer != "bpe":
            return None
        from transformers import AutoTokenizer

        from .students.presets import PRESETS, bpe_tokenizer

        folder, stamp = self.out / "tokenizer", {"vocab_size": s.vocab_size}
        if (folder / "tokenizer.json").exists():
            _check_same(folder / "cotdistill_tokenizer.json", stamp, "tokenizer")
            return AutoTokenizer.from_pretrained(str(folder))
        texts = [e.question for e in train] + [r["rationale"] for r in curated] + [e.answer for e in train]
        masked = PRESETS.get(s.model.split(":", 1)[-1], ("",))[0] == "bert"
        tok = bpe_tokenizer(texts, s.vocab_size, masked=masked)
        tok.save_pretrained(str(folder))
        write_json(folder / "cotdistill_tokenizer.json", stamp)
        return tok

    # -- stage 5: evaluation ---------------------------------------------------------------------
    def evaluate(self, method_name: str, test: list[Example], model_dir: str | Path | None = None, *,
                 reuse: bool = False) -> tuple[list[dict], dict]:
        """Predictions and metrics of one method on `test`. With `reuse` (a rerun of `run`), an
        evaluation already finished with the same model files, test questions and settings is read
        back instead of generated again; `cotdistill evaluate` always generates."""
        from .evaluate import predict, summarize

        mdir = self.out / method_name
        model_dir = self.trained_model_dir(method_name, model_dir)
        stamp = self._evaluation_stamp(method_name, test, model_dir)
        if reuse and (done := _evaluated_before(mdir, stamp)):
            log.info("evaluation of %s already finished with this model, these %d questions and these settings: "
                     "reusing %s (`cotdistill evaluate` generates again)", method_name, len(test),
                     mdir / "predictions.jsonl")
            return done
        (mdir / EVAL_STAMP).unlink(missing_ok=True)  # predictions being replaced are never taken as finished
        method, model, tok, seq2seq = self.load_method(method_name, model_dir)
        with self.rep.task(f"evaluate {method_name}", len(test)) as adv:
            preds = predict(method, model, tok, seq2seq, test, max_new_tokens=stamp["max_new_tokens"],
                            batch_size=self.cfg.eval.batch_size, progress=adv)
        metrics = {**summarize(preds), **method.metrics(preds)}
        write_jsonl(mdir / "predictions.jsonl", preds)
        write_json(mdir / "metrics.json", metrics)
        write_json(mdir / EVAL_STAMP, stamp)  # last: only a complete evaluation carries a stamp
        return preds, metrics

    def _evaluation_stamp(self, method_name: str, test: list[Example], model_dir: Path) -> dict:
        """What an evaluation's predictions depend on: the model's files, the test questions, and
        the evaluation and method settings. The files are hashed by content, not by time: a rerun
        saves an unchanged model again, and a retrained one differs in its bytes."""
        import hashlib
        import json

        def digest(obj) -> str:
            return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

        def file_digest(path: Path) -> str:  # ~1 GB/s: a fraction of a second next to any evaluation
            h = hashlib.blake2b()
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            return h.hexdigest()[:16]

        files = sorted((str(p.relative_to(model_dir)), file_digest(p)) for p in model_dir.rglob("*") if p.is_file())
        return {"model": str(model_dir.resolve()), "model_files": digest(files),
                "test": digest([e.model_dump(mode="json") for e in test]), "n_test": len(test),
                "eval": self.cfg.eval.model_dump(mode="json"), "max_new_tokens": self.eval_max_new_tokens(method_name),
                "method_options": self.cfg.method_options.get(method_name, {}), "version": __version__}

    def trained_model_dir(self, method_name: str, model_dir: str | Path | None = None) -> Path:
        """The folder of a trained student: `model_dir` (e.g. `--model`), else OUT/METHOD/model."""
        if model_dir is not None and not Path(model_dir).exists():
            raise DataError(f"--model {model_dir}: no such folder")
        path = Path(model_dir or self.out / method_name / "model")
        if not path.exists():
            raise DataError(f"{method_name!r} is not trained yet ({path} does not exist): train it first with "
                            f"`cotdistill train CONFIG --method {method_name}` (or `cotdistill run CONFIG`)")
        return path

    def load_method(self, method_name: str, model_dir: Path):
        """(method, model, tokenizer, is_seq2seq) ready to `predict`: the student and what its
        method saved beside it (label heads, a perception module)."""
        method = self.cfg.method(method_name)
        model, tok, seq2seq = self.load_trained(model_dir)
        method.load_extras(model_dir, model)
        return method, model, tok, seq2seq

    def load_trained(self, model_dir: str | Path):
        """A trained student from its folder, on the GPU when there is one (where the Trainer ran)."""
        import torch

        from .students import load_student

        model, tok, seq2seq = load_student(str(model_dir), self.cfg.student.trust_remote_code)
        if torch.cuda.is_available():
            model.to("cuda")
        return model, tok, seq2seq

    def eval_max_new_tokens(self, method_name: str) -> int:
        """The generation limit for a trained method's student (from its longest training target)."""
        info = self.out / method_name / "train_info.json"
        return self._max_new_tokens(_read_json(info).get("max_target_tokens", 0) if info.exists() else 0)

    def _max_new_tokens(self, longest_target: int) -> int:
        if self.cfg.eval.max_new_tokens:
            return self.cfg.eval.max_new_tokens
        return min(4096, int(1.5 * longest_target)) if longest_target else 256

    # -- all stages ------------------------------------------------------------------------------
    def prepare(self) -> tuple[list[Example], list[Example], list[dict]]:
        """Stages 1-3, shared by every method of the run: (train, test, curated rationales)."""
        from .checks import check

        check(self.cfg)  # before the first teacher request: a typo must not cost a paid pass
        train, test = self.data()
        curated: list[dict] = []
        if any(_uses_rationales(m) for m in self.cfg.methods):
            curated = self.curate(self.generate(train))
        return train, test, curated

    def run_method(self, method_name: str, train: list[Example], test: list[Example], curated: list[dict]) -> tuple[dict, list[dict]]:
        """Stages 4-5 for one method; they touch only OUT/METHOD, so methods may run in parallel
        processes over one prepared run folder. Returns (summary row, predictions)."""
        info = self.train(method_name, train, curated)
        preds, metrics = self.evaluate(method_name, test, reuse=True)
        return {**metrics, "train_pairs": info["train_pairs"], "steps": info["steps"], "best_step": info["best_step"]}, preds

    def finish(self, rows: dict[str, dict], preds: dict[str, list[dict]], n_train: int, n_test: int) -> dict:
        """Writes OUT/summary.json and the report from every method's row and predictions."""
        from .report import write_report

        summary = {"task": self.cfg.task.display_name, "student": self.cfg.student.model, "teacher": self.cfg.teacher.backend,
                   "n_train": n_train, "n_test": n_test, "methods": {m: rows[m] for m in self.cfg.methods},
                   **provenance(self.cfg)}
        if (self.out / "curation_stats.json").exists() and any(_uses_rationales(m) for m in self.cfg.methods):
            summary["curation"] = _read_json(self.out / "curation_stats.json")
        write_json(self.out / "summary.json", summary)
        write_report(summary, preds, self.out)
        return summary

    def run_all(self) -> dict:
        from . import dist

        if dist.world_size() == 1:
            train, test, curated = self.prepare()
            rows, preds = {}, {}
            for m in self.cfg.methods:
                rows[m], preds[m] = self.run_method(m, train, test, curated)
            return self.finish(rows, preds, len(train), len(test))
        return self._run_all_processes()

    def _run_all_processes(self) -> dict:
        """Under `accelerate launch`: the main process prepares, saves, evaluates and reports;
        every process trains (dist.py)."""
        from . import dist

        with dist.main_first():
            if dist.is_main():
                train, test, curated = self.prepare()
            else:  # read what the main process wrote: one teacher pass, one copy of every file
                train, test = self.data()
                uses = any(_uses_rationales(m) for m in self.cfg.methods)
                curated = self.load_stage("curated.jsonl") if uses else []
        rows, preds = {}, {}
        for m in self.cfg.methods:
            info = self.train(m, train, curated)
            if dist.is_main():
                preds[m], metrics = self.evaluate(m, test, reuse=True)
                rows[m] = {**metrics, "train_pairs": info["train_pairs"], "steps": info["steps"],
                           "best_step": info["best_step"]}
            dist.barrier()
        summary = self.finish(rows, preds, len(train), len(test)) if dist.is_main() else {}
        dist.barrier()
        return summary


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(rest, held) with round(fraction * n) questions held, chosen reproducibly by id. A weighted
    copy of a question (task mixtures) goes wherever its original goes, so no question is in both."""
    from .tasks.mixture import COPY

    def base(e: Example) -> str:
        return e.metadata.get(COPY) or e.id

    ids = sorted({base(e) for e in examples})
    random.Random(seed).shuffle(ids)
    held_ids = set(ids[:int(round(len(ids) * fraction))])
    return [e for e in examples if base(e) not in held_ids], [e for e in examples if base(e) in held_ids]


def _evaluated_before(mdir: Path, stamp: dict) -> tuple[list[dict], dict] | None:
    """(predictions, metrics) of a finished evaluation with the same stamp, else None."""
    files = [mdir / EVAL_STAMP, mdir / "predictions.jsonl", mdir / "metrics.json"]
    if not all(f.exists() for f in files):
        return None
    try:
        if _read_json(files[0]) != stamp:
            return None
        return read_jsonl_list(files[1]), _read_json(files[2])
    except (OSError, ValueError, CotDistillError):  # unreadable: evaluate again rather than fail the rerun
        return None


def _trained_before(mdir: Path, tcfg) -> dict | None:
    """The train_info of a finished training whose checkpoints were deleted (train.keep_checkpoints:
    false), when its saved model covers the step budget; None means train (or resume) as usual."""
    from .students.train import last_checkpoint

    info_file = mdir / "train_info.json"
    if not tcfg.resume or last_checkpoint(mdir / "checkpoints") is not None:
        return None
    if not ((mdir / "model").is_dir() and info_file.exists()):  # model/ is moved into place whole
        return None
    info = _read_json(info_file)
    if info.get("steps", 0) < tcfg.max_steps:
        log.warning("%s: the model saved after %s steps has no checkpoint to resume from (train.keep_checkpoints: "
                    "false); training %d steps from the start", mdir, info.get("steps"), tcfg.max_steps)
        return None
    log.info("%s: training already finished at step %s: reusing its model", mdir, info["steps"])
    return info


def _source_files(task) -> list[Path]:
    """The user's own data files behind a task (file, release and BIG-bench paths, a mixture's
    entries'): the ones that may be edited in place between two runs into one folder."""
    if task.source == "mixture":
        return [f for entry in task.mixture for f in _source_files(entry.task)]
    if task.source not in ("file", "release", "bigbench"):
        return []
    files = [Path(p) / "task.json" if Path(p).is_dir() else Path(p) for p in (task.path, task.test_path) if p]
    return [f for f in files if f.is_file()]


def _source_digests(task) -> dict[str, str]:
    import hashlib

    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in _source_files(task)}


def _check_sources(stamp: Path, task) -> None:
    """OUT/data is a copy of the task's files: refuse to go on from it once a file it was made
    from has changed (a fixed label, say), rather than train on the stale copy unawares."""
    import json

    if not stamp.exists():  # a folder written before sources were stamped
        return
    before, now = json.loads(stamp.read_text()), _source_digests(task)
    changed = sorted(p for p in before if p in now and before[p] != now[p])
    if changed:
        raise ConfigError(f"{', '.join(changed)} changed since {stamp.parent} was made from it; the run folder's copy "
                          f"is stale: delete {stamp.parent} (and any trained method folders) to load the file again, "
                          f"or use a new `out` folder")


def _holds_training(mdir: Path) -> bool:
    """Whether a method folder holds anything trained (a checkpoint, a model, its training info)."""
    ckpts = mdir / "checkpoints"
    return ((mdir / "model").exists() or (mdir / "train_info.json").exists()
            or (ckpts.is_dir() and any(p.name.startswith("checkpoint-") for p in ckpts.iterdir())))


def _check_same(stamp: Path, current: dict, what: str, defaults: dict | None = None) -> None:
    """A run folder holds one experiment: refuse to mix artifacts made under another config. A key
    the stamp lacks (a setting added since it was written) matches its default, at any depth."""
    import json

    if stamp.exists():
        before = _with_defaults(json.loads(stamp.read_text()), current, defaults or {})
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


def _uses_rationales(name: str) -> bool:
    from .methods import METHODS

    return METHODS.get(name).uses_rationales


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
