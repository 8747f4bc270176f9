"""The pipeline: tasks -> teacher rationales -> curation -> method format -> training ->
evaluation -> report. Each stage reads and writes files under the run folder, so stages can run
one at a time from the CLI and a rerun skips what is already complete."""
from __future__ import annotations

import logging
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .config import RunConfig, config_defaults, dump_config
from .errors import ConfigError, DataError
from .methods import needs_rationales
from .progress import Reporter, reporter_for
from .io import content_digest, folder_digest, ordinary_modes, read_json, read_jsonl_list, write_json, write_jsonl
from .runs import RunFolder, check_same
from .tasks.schema import Example

log = logging.getLogger(__name__)
# Questions per saved part of an evaluation: a killed evaluation loses at most this many answers.
# Within a part, generation batches questions of similar length, as it did over the whole set.
EVAL_CHUNK = 256


def _git_rev() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except Exception:
        return None


def provenance(cfg: RunConfig) -> dict:
    return {"cotdistill_version": __version__, "git_rev": _git_rev()}


@dataclass
class Trained:
    """What training one method produced, before it is saved."""

    method: object  # the method instance that trained (a masked-LM method keeps its label space for saving)
    model: object
    tok: object
    seq2seq: bool
    parts: object  # methods.base.TrainingParts: what the loop trained
    result: object  # students.train.TrainResult
    held: list[Example]  # questions the method kept out of training for its own parts
    val: list[Example]
    trainable: int


class Run:
    """One run: its config, its folder, and the stages that fill the folder, in order. Progress of
    long stages goes to `reporter`; by default bars on a terminal and lines in a log
    (`progress.reporter_for`), `SilentReporter()` for none."""

    def __init__(self, cfg: RunConfig, reporter: Reporter | None = None):
        self.cfg = cfg
        self.folder = RunFolder(cfg.out)
        self.out = self.folder.root
        self.rep = reporter or reporter_for()
        self._checked: set[str] = set()

    def preflight(self, stages=None) -> None:
        """Every problem in the config for `stages` (default: all), before the first expensive step;
        stages already checked by this run are not checked again."""
        from .checks import STAGES, check

        todo = [s for s in (stages or STAGES) if s not in self._checked]
        if todo:
            check(self.cfg, todo)
            self._checked.update(todo)

    # -- stage 1: data ---------------------------------------------------------------------------
    def data(self) -> tuple[list[Example], list[Example]]:
        from .tasks import load_task

        f = self.folder
        if f.has_data():
            f.check_data(self.cfg.task)
            return self._read_examples(f.train), self._read_examples(f.test)
        train, test = load_task(self.cfg.task)
        write_jsonl(f.test, [e.model_dump(mode="json") for e in test])
        write_jsonl(f.train, [e.model_dump(mode="json") for e in train])
        f.stamp_data(self.cfg.task)
        f.config.write_text(dump_config(self.cfg))
        return train, test

    @staticmethod
    def _read_examples(path: Path) -> list[Example]:
        return [Example.parse(r, f"{path}:{i + 1}") for i, r in enumerate(read_jsonl_list(path))]

    # -- stage 2: teacher ------------------------------------------------------------------------
    def generate(self, train: list[Example]) -> list[dict]:
        from .teachers import build_prompting, build_teacher
        from .teachers.generate import generate_rationales, n_requests

        records, summaries = [], {}
        for label, t, task, exs in self._teacher_groups(train):
            teacher = build_teacher(t, task, t.cache or self.folder.teacher_cache)
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
            write_json(self.folder.teacher_summary, summaries[None] if list(summaries) == [None] else summaries)
        write_jsonl(self.folder.rationales, records)
        return records

    def _teacher_groups(self, train: list[Example]):
        """(label, teacher config, task config, examples) per rationale source: the run's teacher
        for one task; for a mixture, each entry's own teacher (default the run's) on its examples."""
        from .tasks.mixture import task_of

        for _, label, teacher, task in self.cfg.task.rationale_sources(self.cfg.teacher):
            exs = train if label is None else [e for e in train if task_of(e) == label]
            if exs:
                yield label, teacher, task, exs

    # -- stage 3: curation -----------------------------------------------------------------------
    def curate(self, records: list[dict]) -> list[dict]:
        from .curate import curate

        c, f = self.cfg.curate, self.folder
        kept, stats = curate(records, dedupe=c.dedupe, keep_truncated=c.keep_truncated, answer_source=c.answer_source)
        write_jsonl(f.curated, kept)
        write_json(f.curation_stats, stats.as_dict())
        log.info("curation: kept %d of %d samples; dropped %s", stats.kept, stats.samples, dict(stats.dropped))
        if not kept:
            why = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common()) or "no rationales"
            raise DataError(f"curation kept 0 of {stats.samples} teacher rationales ({why}; details in "
                            f"{f.curation_stats}): check task.kind and the teacher's answers in {f.rationales}")
        return kept

    def curated(self, methods: list[str] | None = None) -> list[dict]:
        """The curated rationales a later command reads back (none when no method uses any)."""
        return self.folder.stage(self.folder.curated) if needs_rationales(methods or self.cfg.methods) else []

    # -- stage 4: training -----------------------------------------------------------------------
    def split_val(self, train: list[Example]) -> tuple[list[Example], list[Example]]:
        return _split(train, self.cfg.train.val_fraction, self.cfg.train.seed)

    def check_training_setup(self, method_name: str) -> None:
        """Checkpoints only resume a run of the same student, data and hyper-parameters (the step
        budget may grow): the settings a checkpoint depends on, stamped in METHOD/train_fingerprint.json.
        A stamp written before a setting existed is read with that setting's default."""
        cfg, method = self.cfg, self.cfg.method(method_name)
        fingerprint = {"student": cfg.student.fingerprint(), "curate": cfg.curate.fingerprint(),
                       "teacher": cfg.teacher.fingerprint(), "train": cfg.train.fingerprint(),
                       "method_options": method.training_options()}
        defaults = {k: config_defaults(method.opts if k == "method_options" else getattr(cfg, k)) for k in fingerprint}
        self.folder.method(method_name).check_fingerprint(fingerprint, defaults)

    def train(self, method_name: str, train: list[Example], curated: list[dict]) -> dict:
        """Trains one method's student (resuming its checkpoints) and saves it in METHOD/model."""
        mf = self.folder.method(method_name)
        if not self.cfg.train.resume:
            mf.forget_training()
        self.check_training_setup(method_name)
        trained = self._fit(method_name, train, curated)
        if isinstance(trained, dict):  # finished before: its saved model is reused
            return trained
        from . import dist

        if not dist.is_main():  # another training process: the main one saves
            r = trained.result
            return {"steps": r.steps, "train_pairs": r.train_pairs, "best_step": r.best_step}
        return self._save(method_name, trained)

    def _fit(self, method_name: str, train: list[Example], curated: list[dict]) -> Trained | dict:
        from .students.train import train_student

        method, mf = self.cfg.method(method_name), self.folder.method(method_name)
        model, tok, seq2seq = self.student(method_name, train, curated)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        by_q = rationales_by_question(curated)
        tr, va, held = self._splits(method_name, train)
        parts = method.training(model, tok, seq2seq, tr, va, by_q, seed=self.cfg.train.seed)
        tcfg = self.cfg.train.model_copy(update={"max_steps": self.cfg.train.steps_for(parts.n_items)})
        if done := mf.trained_before(tcfg.max_steps, tcfg.resume):
            return done
        with self.rep.task(f"train {method_name}", tcfg.max_steps) as adv:
            res = train_student(parts.model, tok, seq2seq, parts.train, parts.val, tcfg, mf.root, progress=adv,
                                encode=parts.encode, collator=parts.collator, groups=parts.groups)
        return Trained(method, model, tok, seq2seq, parts, res, held, va, trainable)

    def student(self, method_name: str, train: list[Example], curated: list[dict]):
        """The student a method trains: from its source, with the run's tokenizer, LoRA adapters if asked."""
        from .students import load_student

        s = self.cfg.student
        model, tok, seq2seq = load_student(s.model, s.trust_remote_code, seed=self.cfg.train.seed, layers=s.layers,
                                           tokenizer=self.student_tokenizer(train, curated))
        if s.lora:
            from .checks import own_module_problem
            from .students.lora import add_lora

            if problem := own_module_problem([method_name]):
                raise ConfigError(problem)
            model = add_lora(model, s.lora)
        return model, tok, seq2seq

    def _splits(self, method_name: str, train: list[Example]) -> tuple[list[Example], list[Example], list[Example]]:
        """(training, validation, held out) questions. A method's own held-out questions (adaptive: route
        labels) never reach student training."""
        tr, va = self.split_val(train)
        frac = self.cfg.method(method_name).held_out_fraction()
        if frac <= 0:
            return tr, va, []
        if frac + self.cfg.train.val_fraction >= 0.9:
            raise ConfigError(f"{method_name}: held-out share {frac} plus train.val_fraction "
                              f"{self.cfg.train.val_fraction} leaves under 10% of the questions for training")
        tr, held = _split(tr, frac * len(train) / max(1, len(tr)), self.cfg.train.seed + 1)
        return tr, va, held

    def _save(self, method_name: str, t: Trained) -> dict:
        """METHOD/model (saved whole, then moved into place: never a half-written model), with what the
        method fits after training beside it; train_info.json and train_log.jsonl."""
        from .students.lora import merged

        method, mf, res = t.method, self.folder.method(method_name), t.result
        model = merged(t.model)  # LoRA: saved with the adapters folded in, so it loads like any model
        tmp = mf.model_partial
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        t.tok.save_pretrained(tmp)
        (tmp / "cotdistill.yaml").write_text(dump_config(self.cfg))
        extra = method.after_train(model, t.tok, t.seq2seq, t.held + t.val, tmp, parts=t.parts,
                                   max_new_tokens=self._max_new_tokens(res.max_target_tokens),
                                   batch_size=self.cfg.eval.batch_size, reporter=self.rep)
        ordinary_modes(tmp)
        shutil.rmtree(mf.model, ignore_errors=True)
        tmp.rename(mf.model)
        info = {"method": method_name, "steps": res.steps, "train_pairs": res.train_pairs, "val_pairs": res.val_pairs,
                "held_out_questions": len(t.held), "skipped_overlong": res.skipped_overlong,
                "best_val_loss": res.best_val_loss, "best_step": res.best_step,
                "max_target_tokens": res.max_target_tokens, "tokens_per_example": res.tokens_per_example,
                "trainable_parameters": t.trainable, **t.parts.info, **extra, **provenance(self.cfg)}
        write_json(mf.train_info, info)
        write_jsonl(mf.train_log, res.history)
        if not self.cfg.train.keep_checkpoints:  # model/ and train_info.json are written: nothing needs them now
            shutil.rmtree(mf.checkpoints, ignore_errors=True)
        return info

    def student_tokenizer(self, train: list[Example], curated: list[dict]):
        """`student.tokenizer: bpe`: one BPE for every method of the run, trained once on its
        training questions, rationales and answers (never the test split) and kept in OUT/tokenizer."""
        s, f = self.cfg.student, self.folder
        if s.tokenizer != "bpe":
            return None
        from transformers import AutoTokenizer

        from .students.presets import PRESETS, bpe_tokenizer

        stamp = {"vocab_size": s.vocab_size}
        if (f.tokenizer / "tokenizer.json").exists():
            check_same(f.tokenizer_stamp, stamp, "tokenizer")
            return AutoTokenizer.from_pretrained(str(f.tokenizer))
        texts = [e.question for e in train] + [r["rationale"] for r in curated] + [e.answer for e in train]
        masked = PRESETS.get(s.model.split(":", 1)[-1], ("",))[0] == "bert"
        tok = bpe_tokenizer(texts, s.vocab_size, masked=masked)
        tok.save_pretrained(str(f.tokenizer))
        write_json(f.tokenizer_stamp, stamp)
        return tok

    # -- stage 5: evaluation ---------------------------------------------------------------------
    def evaluate(self, method_name: str, test: list[Example], model_dir: str | Path | None = None, *,
                 reuse: bool = False) -> tuple[list[dict], dict]:
        """Predictions and metrics of one method on `test`. With `reuse` (a rerun of `run`), an
        evaluation already finished with the same model files, test questions and settings is read
        back instead of generated again; `cotdistill evaluate` always generates."""
        from .evaluate import predict, score

        mf = self.folder.method(method_name)
        model_dir = mf.trained_model(model_dir)
        stamp = self._evaluation_stamp(method_name, test, model_dir)
        if reuse and (done := mf.evaluated_before(stamp)):
            log.info("evaluation of %s already finished with this model, these %d questions and these settings: "
                     "reusing %s (`cotdistill evaluate` generates again)", method_name, len(test), mf.predictions)
            return done
        mf.evaluation.unlink(missing_ok=True)  # predictions being replaced are never taken as finished
        chunks = [test[i:i + EVAL_CHUNK] for i in range(0, len(test), EVAL_CHUNK)]
        saved = mf.saved_evaluation_parts(stamp)
        saved = {i: rows for i, rows in saved.items() if i < len(chunks) and [r.get("id") for r in rows] ==
                 [e.id for e in chunks[i]]}
        if saved:
            log.info("resuming the evaluation of %s: %d of %d questions already answered (%s)", method_name,
                     sum(map(len, saved.values())), len(test), mf.evaluation_parts)
        loaded = None
        preds: list[dict] = []
        with self.rep.task(f"evaluate {method_name}", len(test)) as adv:
            for i, chunk in enumerate(chunks):
                if i in saved:
                    adv(len(chunk))
                    preds += saved[i]
                    continue
                loaded = loaded or self.load_method(method_name, model_dir)
                method, model, tok, seq2seq = loaded
                rows = predict(method, model, tok, seq2seq, chunk, max_new_tokens=stamp["max_new_tokens"],
                               batch_size=self.cfg.eval.batch_size, progress=adv)
                mf.save_evaluation_part(i, rows)
                preds += rows
        metrics = score(loaded[0] if loaded else self.cfg.method(method_name), preds)  # metrics read predictions only
        write_jsonl(mf.predictions, preds)
        write_json(mf.metrics, metrics)
        write_json(mf.evaluation, stamp)  # last: only a complete evaluation carries a stamp
        mf.drop_evaluation_parts()
        return preds, metrics

    def _evaluation_stamp(self, method_name: str, test: list[Example], model_dir: Path) -> dict:
        """What an evaluation's predictions depend on: the model's files (by content), the test
        questions, and the evaluation and method settings."""
        return {"model": str(model_dir.resolve()), "model_files": folder_digest(model_dir),
                "test": content_digest([e.model_dump(mode="json") for e in test]), "n_test": len(test),
                "eval": self.cfg.eval.model_dump(mode="json"), "max_new_tokens": self.eval_max_new_tokens(method_name),
                "method_options": self.cfg.method_options.get(method_name, {}), "version": __version__}

    def load_method(self, method_name: str, model_dir: Path):
        """(method, model, tokenizer, is_seq2seq) ready to `predict`: the student and what its
        method saved beside it (label heads, a perception module)."""
        model, tok, seq2seq = self.load_trained(model_dir)
        return self.cfg.method(method_name).load_extras(model_dir, model), model, tok, seq2seq

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
        return self._max_new_tokens(self.folder.method(method_name).max_target_tokens())

    def _max_new_tokens(self, longest_target: int) -> int:
        if self.cfg.eval.max_new_tokens:
            return self.cfg.eval.max_new_tokens
        return min(4096, int(1.5 * longest_target)) if longest_target else 256

    # -- all stages ------------------------------------------------------------------------------
    def prepare(self) -> tuple[list[Example], list[Example], list[dict]]:
        """Stages 1-3, shared by every method of the run: (train, test, curated rationales)."""
        self.preflight()  # before the first teacher request: a typo must not cost a paid pass
        train, test = self.data()
        curated = self.curate(self.generate(train)) if needs_rationales(self.cfg.methods) else []
        return train, test, curated

    def run_method(self, method_name: str, train: list[Example], test: list[Example], curated: list[dict]) -> tuple[dict, list[dict]]:
        """Stages 4-5 for one method; they touch only OUT/METHOD, so methods may run in parallel
        processes over one prepared run folder. Returns (summary row, predictions)."""
        info = self.train(method_name, train, curated)
        preds, metrics = self.evaluate(method_name, test, reuse=True)
        return summary_row(metrics, info), preds

    def finish(self, rows: dict[str, dict], preds: dict[str, list[dict]], n_train: int, n_test: int) -> dict:
        """Writes OUT/summary.json and the report from every method's row and predictions."""
        from .report import write_html, write_report

        f = self.folder
        summary = {"task": self.cfg.task.display_name, "student": self.cfg.student.model, "teacher": self.cfg.teacher.backend,
                   "n_train": n_train, "n_test": n_test, "methods": {m: rows[m] for m in self.cfg.methods},
                   **provenance(self.cfg)}
        if f.curation_stats.exists() and needs_rationales(self.cfg.methods):
            summary["curation"] = read_json(f.curation_stats)
        write_json(f.summary, summary)
        write_report(summary, preds, self.out)
        write_html([self.out])
        return summary

    def run_all(self) -> dict:
        from . import dist

        if dist.world_size() > 1:
            return self._run_all_processes()
        train, test, curated = self.prepare()
        rows, preds = {}, {}
        for m in self.cfg.methods:
            rows[m], preds[m] = self.run_method(m, train, test, curated)
        return self.finish(rows, preds, len(train), len(test))

    def _run_all_processes(self) -> dict:
        """Under `accelerate launch`: the main process prepares, saves, evaluates and reports;
        every process trains (dist.py)."""
        from . import dist

        with dist.main_first():
            if dist.is_main():
                train, test, curated = self.prepare()
            else:  # read what the main process wrote: one teacher pass, one copy of every file
                train, test = self.data()
                curated = self.curated()
        rows, preds = {}, {}
        for m in self.cfg.methods:
            info = self.train(m, train, curated)
            if dist.is_main():
                preds[m], metrics = self.evaluate(m, test, reuse=True)
                rows[m] = summary_row(metrics, info)
            dist.barrier()
        summary = self.finish(rows, preds, len(train), len(test)) if dist.is_main() else {}
        dist.barrier()
        return summary


def summary_row(metrics: dict, info: dict) -> dict:
    """A method's row of summary.json: its metrics and how it was trained."""
    return {**metrics, "train_pairs": info["train_pairs"], "steps": info["steps"], "best_step": info["best_step"]}


def rationales_by_question(curated: list[dict]) -> dict[str, list[str]]:
    by_q: dict[str, list[str]] = {}
    for r in curated:
        by_q.setdefault(r["id"], []).append(r["rationale"])
    return by_q


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
