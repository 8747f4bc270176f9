"""`kd`: white-box distillation on top of Fine-tune-CoT. The student learns the ft_cot pairs
(`{q} ###` -> ` {r} --> {a}`) from the teacher's rationales, and on every target token also the
teacher's next-token distribution (Hinton et al. 2015, "Distilling the Knowledge in a Neural
Network"; the divergences of Agarwal et al. 2024, "On-Policy Distillation of Language Models:
Learning from Self-Generated Mistakes" (GKD)):

    loss = alpha x cross-entropy(target) + (1 - alpha) x tau^2 x D(teacher || student)

over the target tokens at temperature tau, with D the forward KL, the reverse KL, or the
generalised Jensen-Shannon divergence of GKD (beta: the mixture weight). The teacher is a local
causal LM with the student's tokenizer (`method_options.kd.teacher`: a model folder, e.g. a trained
ft_cot student, or `pretrained:NAME`); it is never saved with the student. Its distributions are
computed on the fly, or, with `top_k: K`, once: the K most likely next tokens per target token and
their log-probabilities, cached in a file that names the teacher (by its files' digest) and reused
across epochs and runs. With a cache both distributions are compared on those K tokens,
renormalised (with K the vocabulary size, exactly as on the fly). With `on_policy: lambda` (GKD),
that share of the training batches is the student's own samples after each source, scored by the
teacher. Decoder-only students; generation and answer reading are ft_cot's.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field

from ..errors import ConfigError
from ..io import content_digest, folder_digest
from ..students.data import Collator, encode_pairs
from ..students.modules import OwnModule
from .base import MethodOptions, TrainingParts
from .ft_cot import FineTuneCoT


class KDOptions(MethodOptions):
    teacher: str | None = Field(None, description="the teacher: a causal LM folder (e.g. a trained ft_cot student) "
                                "or pretrained:NAME, with the student's tokenizer")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the cross-entropy on the target; 1 - alpha "
                         "goes to the distribution term")
    temperature: float = Field(1.0, gt=0, description="tau: both distributions are softened by it; the term is "
                               "scaled by tau^2")
    divergence: Literal["forward", "reverse", "jsd"] = Field(
        "forward", description="forward: KL(teacher || student) (mode-covering); reverse: KL(student || teacher) "
        "(mode-seeking); jsd: GKD's generalised Jensen-Shannon divergence with `beta`")
    beta: float = Field(0.5, gt=0.0, lt=1.0, description="jsd: weight of the teacher in the mixture")
    top_k: int | None = Field(None, ge=1, description="cache the teacher's K most likely next tokens per target "
                              "token once, reused across epochs and runs (the distributions are compared on them); "
                              "null: the teacher scores every batch")
    cache: str | None = Field(None, description="top_k: the cache file (default: COTDISTILL_CACHE/kd/, one file per "
                              "teacher and K)")
    on_policy: float = Field(0.0, ge=0.0, le=1.0, description="lambda (GKD): the share of training batches whose "
                             "targets the student samples itself (temperature 1, up to the batch's longest target), scored "
                             "by the teacher on the fly; their loss is tau^2 x the divergence alone")


log = logging.getLogger(__name__)


def divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str, tau: float = 1.0,
               beta: float = 0.5) -> torch.Tensor:
    """Per-position divergence between the teacher's and the student's next-token distributions at
    temperature `tau` (logits [N, vocab] -> [N])."""
    ls = torch.log_softmax(student_logits.float() / tau, -1)
    lt = torch.log_softmax(teacher_logits.float() / tau, -1)
    if kind == "forward":
        return (lt.exp() * (lt - ls)).sum(-1)
    if kind == "reverse":
        return (ls.exp() * (ls - lt)).sum(-1)
    # log of the mixture beta * p_t + (1 - beta) * p_s, computed in log space
    lm = torch.logsumexp(torch.stack([lt + torch.log(torch.tensor(beta)), ls + torch.log(torch.tensor(1 - beta))]), 0)
    return beta * (lt.exp() * (lt - lm)).sum(-1) + (1 - beta) * (ls.exp() * (ls - lm)).sum(-1)


class KDModule(OwnModule):
    """The student, trained on cross-entropy plus the teacher's distributions. The teacher is held
    outside the module's parameters: it never trains, moves with the batch, and stays out of checkpoints."""

    def __init__(self, student, teacher, opts: KDOptions, pad_id: int = 0, seed: int = 0):
        super().__init__()
        self.student = student
        self._teacher = [teacher.eval().requires_grad_(False)]
        self.opts, self.pad_id, self.seed = opts, pad_id, seed
        self.on_policy_batches = 0
        self.ready(student.config)

    def students(self):
        return [self.student]

    def takes_on_policy(self, input_ids: torch.Tensor) -> bool:
        """Whether this training batch is one of the `on_policy` share. Decided by the batch's tokens and
        the seed, not by a counter, so a run resumed from a checkpoint decides every later batch alike."""
        if not (self.training and self.opts.on_policy > 0):
            return False
        h = hashlib.blake2b(input_ids.cpu().numpy().tobytes(), digest_size=8, key=str(self.seed).encode())
        return int.from_bytes(h.digest(), "big") / 2 ** 64 < self.opts.on_policy

    def sample(self, input_ids, labels):
        """The batch with each row's target replaced by what the student samples after its source."""
        # One generate call for the batch (sources left-padded), as GKDTrainer does: sampling row by
        # row cost most of an on-policy step.
        has = labels != -100
        n_srcs = [int(h.nonzero()[0]) if h.any() else len(h) for h in has]
        n_tgts = [int(h.sum()) for h in has]
        width = max(n_srcs)
        src = torch.full((len(n_srcs), width), self.pad_id, dtype=torch.long, device=input_ids.device)
        src_att = torch.zeros_like(src)
        for r, n in enumerate(n_srcs):
            src[r, width - n:], src_att[r, width - n:] = input_ids[r, :n], 1
        eos = getattr(self.student.generation_config, "eos_token_id", None)
        was = self.student.training
        self.student.eval()
        with torch.no_grad():
            out = self.student.generate(input_ids=src, attention_mask=src_att, do_sample=True, top_k=0, temperature=1.0,
                                        max_new_tokens=max(1, max(n_tgts)), pad_token_id=self.pad_id)
        self.student.train(was)
        rows = []
        # Every row may run to the batch's longest target, as in GKDTrainer, so that a sample can
        # reach its end of sequence (cut at its own target's length, few did).
        for r, n_src in enumerate(n_srcs):
            new = out[r, width:]
            if eos is not None:  # up to and with the first end of sequence (the rest is padding)
                ends = torch.isin(new, torch.tensor(eos, device=new.device).reshape(-1)).nonzero()
                new = new[:int(ends[0]) + 1] if len(ends) else new
            rows.append((input_ids[r, :n_src], new))
        n = max(len(a) + len(b) for a, b in rows)
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long, device=input_ids.device)
        att = torch.zeros_like(ids)
        lab = torch.full_like(ids, -100)
        for r, (src, new) in enumerate(rows):
            k = len(src) + len(new)
            ids[r, :k], att[r, :k] = torch.cat([src, new]), 1
            lab[r, len(src):k] = new
        return ids, att, lab

    def forward(self, input_ids, attention_mask, labels, topk_ids=None, topk_lp=None, **kw):
        o = self.opts
        if self.takes_on_policy(input_ids):
            input_ids, attention_mask, labels = self.sample(input_ids, labels)
            self.on_policy_batches += 1
            return {"loss": o.temperature ** 2 * self._teacher_divergence(input_ids, attention_mask, labels)}
        logits = self.student(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        target = labels[:, 1:]
        mask = target != -100
        s = logits[mask]
        ce = torch.nn.functional.cross_entropy(s.float(), target[mask])
        if o.alpha >= 1.0:
            return {"loss": ce}
        if topk_ids is not None:  # the cached teacher: both distributions on its K tokens, renormalised
            d = divergence(s.gather(-1, topk_ids.long()), topk_lp, o.divergence, o.temperature, o.beta).mean()
            return {"loss": o.alpha * ce + (1 - o.alpha) * o.temperature ** 2 * d}
        d = self._teacher_divergence(input_ids, attention_mask, labels, s)
        return {"loss": o.alpha * ce + (1 - o.alpha) * o.temperature ** 2 * d}

    def _teacher_divergence(self, input_ids, attention_mask, labels, s=None) -> torch.Tensor:
        """The mean divergence over the target tokens, the teacher scoring the batch now."""
        o, mask = self.opts, labels[:, 1:] != -100
        if s is None:
            s = self.student(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][mask]
        teacher = self._teacher[0]
        if next(teacher.parameters()).device != input_ids.device:
            teacher.to(input_ids.device)
        with torch.no_grad():
            t = teacher(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][mask]
        if t.shape[-1] != s.shape[-1]:
            raise ConfigError(f"kd: the teacher's logits have {t.shape[-1]} entries and the student's {s.shape[-1]}: "
                              "they need the same vocabulary")
        return divergence(s, t, o.divergence, o.temperature, o.beta).mean()


class TopKCache:
    """The teacher's K most likely next tokens and their log-probabilities for each target token of
    encoded sequences (keyed by their token ids), in one file that names the teacher it was made by."""

    def __init__(self, path: Path, teacher: str, digest: str, k: int):
        self.path, self.teacher, self.digest, self.k = Path(path), teacher, digest, k
        self.entries: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if self.path.exists():
            try:
                d = torch.load(self.path, weights_only=True)
                d["teacher"], d["teacher_digest"], d["k"], d["entries"]
            except Exception as e:  # a truncated or foreign file: say which, rather than a pickle traceback
                raise ConfigError(f"{self.path}: not a kd top-k cache ({type(e).__name__}: {e}); delete it or set "
                                  f"another `method_options.kd.cache`") from None
            if (d["teacher_digest"], d["k"]) != (digest, k):
                raise ConfigError(f"{self.path}: a top-k cache made by the teacher {d['teacher']} (files "
                                  f"{d['teacher_digest']}, K {d['k']}), not by {teacher} (files {digest}, K {k}); "
                                  f"set another `method_options.kd.cache` or delete this file")
            self.entries = d["entries"]

    @staticmethod
    def key(feature: dict) -> str:
        return content_digest([feature["input_ids"], feature["labels"]])

    def attach(self, feats: list[dict], teacher, pad_id: int, batch_size: int = 16) -> int:
        """Give every feature its teacher top-k (`topk_ids`, `topk_lp`), scoring only those not cached
        yet; returns how many were scored (and saves the file when any was)."""
        todo = [f for f in feats if self.key(f) not in self.entries]
        collate = Collator(pad_id)
        device = next(teacher.parameters()).device
        with torch.no_grad():
            for i in range(0, len(todo), batch_size):
                rows = todo[i:i + batch_size]
                b = collate(rows)
                logits = teacher(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).logits
                mask = b["labels"][:, 1:] != -100
                for r, f in enumerate(rows):
                    lp = torch.log_softmax(logits[r, :-1][mask[r]].float(), -1)
                    top = lp.topk(min(self.k, lp.shape[-1]), -1)
                    self.entries[self.key(f)] = (top.indices.to(torch.int32).cpu(), top.values.cpu())
        if todo:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".partial")
            torch.save({"teacher": self.teacher, "teacher_digest": self.digest, "k": self.k, "entries": self.entries}, tmp)
            tmp.replace(self.path)  # whole or not at all
        for f in feats:
            f["topk_ids"], f["topk_lp"] = self.entries[self.key(f)]
        return len(todo)


def _collate_topk(base: Collator):
    """Padded rows, and the rows' cached top-k joined in the order the student's target positions come."""
    def collate(batch: list[dict]) -> dict:
        out = base(batch)
        out["topk_ids"] = torch.cat([f["topk_ids"] for f in batch])
        out["topk_lp"] = torch.cat([f["topk_lp"] for f in batch])
        return out
    return collate


def teacher_digest(name: str) -> str:
    """What identifies a teacher: the files of its folder (a path, or pretrained:NAME's converted
    folder), and its name (all a hub id that is not a local folder has)."""
    if name.startswith("pretrained:"):
        from ..packaged import PACKAGED_LMS

        folder = PACKAGED_LMS[name.split(":", 1)[1]].folder()
    else:
        folder = Path(name).expanduser()
    return content_digest([name, folder_digest(folder) if folder.is_dir() else None])


class KnowledgeDistillation(FineTuneCoT):
    name = "kd"
    paper = "Hinton et al. 2015 (logit distillation); Agarwal et al. 2024, GKD (divergences) on Fine-tune-CoT pairs"
    Options: ClassVar[type[KDOptions]] = KDOptions
    owns_training = True

    def after_train(self, model, tok, seq2seq, held_out, model_dir, *, parts, **kw) -> dict:
        # since the last (re)start of training: a resumed run counts the batches after its checkpoint
        return {"on_policy_batches": parts.model.on_policy_batches} if self.opts.on_policy else {}

    def problems(self, cfg) -> list[str]:
        """The teacher must exist, be a language model, and share the student's tokenizer."""
        from ..students import model_problems, tokenizer_problem

        field = f"method_options.{self.name}.teacher"
        if not self.opts.teacher:
            return [f"`{field}`: kd learns from a teacher's distributions: name a causal LM folder (e.g. a trained "
                    f"ft_cot student) or pretrained:NAME with the student's tokenizer"]
        found = model_problems(self.opts.teacher, field, teacher=True)
        if not found and cfg.student.tokenizer != "bpe":  # a BPE the run trains is compared when training starts
            problem = tokenizer_problem(cfg.student.model, self.opts.teacher)
            found += [f"`{field}`: {problem}"] if problem else []
        return found

    def training(self, model, tok, seq2seq, train, val, rationales, *, seed) -> TrainingParts:
        from ..students import load_causal_lm, same_vocabulary

        field = f"method_options.{self.name}.teacher"
        if seq2seq:
            raise ConfigError(f"`{field}`: kd trains decoder-only students; this student is an encoder-decoder")
        if not self.opts.teacher:
            raise ConfigError(f"`{field}`: kd needs a teacher (a causal LM with the student's tokenizer)")
        teacher, teacher_tok = load_causal_lm(self.opts.teacher, field)
        if problem := same_vocabulary(tok, teacher_tok, "the student", self.opts.teacher):
            raise ConfigError(f"`{field}`: {problem}")
        tp = self.pairs(train, rationales, seq2seq)
        if self.opts.top_k is None:
            encode, collator = (lambda pairs, n: encode_pairs(pairs, tok, seq2seq, n)), Collator(tok.pad_token_id)
        else:
            digest, k = teacher_digest(self.opts.teacher), self.opts.top_k
            from ..packaged import cache_dir

            cache = TopKCache(Path(self.opts.cache) if self.opts.cache else cache_dir() / "kd" / f"{digest}-k{k}.pt",
                              self.opts.teacher, digest, k)

            def encode(pairs, n):
                feats, skipped = encode_pairs(pairs, tok, seq2seq, n)
                scored = cache.attach(feats, teacher, tok.pad_token_id)
                log.info("kd: teacher top-%d of %d sequences, %d read from %s", k, len(feats), len(feats) - scored,
                         cache.path)
                return feats, skipped

            collator = _collate_topk(Collator(tok.pad_token_id))
        module = KDModule(model, teacher, self.opts, pad_id=tok.pad_token_id, seed=seed)
        return TrainingParts(module, tp, self.pairs(val, rationales, seq2seq), len(tp), encode=encode, collator=collator)
