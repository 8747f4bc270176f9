"""`kd`: white-box distillation on top of Fine-tune-CoT. The student learns the ft_cot pairs
(`{q} ###` -> ` {r} --> {a}`) from the teacher's rationales, and on every target token also the
teacher's next-token distribution (Hinton et al. 2015, "Distilling the Knowledge in a Neural
Network"; the divergences of Agarwal et al. 2024, "On-Policy Distillation of Language Models:
Learning from Self-Generated Mistakes" (GKD)):

    loss = alpha x cross-entropy(target) + (1 - alpha) x tau^2 x D(teacher || student)

over the target tokens at temperature tau, with D the forward KL, the reverse KL, or the
generalised Jensen-Shannon divergence of GKD (beta: the mixture weight). The teacher is a local
causal LM with the student's tokenizer (`method_options.kd.teacher`: a model folder, e.g. a trained
ft_cot student, or `pretrained:NAME`); its logits are computed on the fly, in inference mode, and
it is never saved with the student. Decoder-only students; generation and answer reading are ft_cot's.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from ..errors import ConfigError
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

    def __init__(self, student, teacher, opts: KDOptions):
        super().__init__()
        self.student = student
        self._teacher = [teacher.eval().requires_grad_(False)]
        self.opts = opts
        self.ready(student.config)

    def students(self):
        return [self.student]

    def forward(self, input_ids, attention_mask, labels, **kw):
        o = self.opts
        logits = self.student(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        target = labels[:, 1:]
        mask = target != -100
        s = logits[mask]
        ce = torch.nn.functional.cross_entropy(s.float(), target[mask])
        if o.alpha >= 1.0:
            return {"loss": ce}
        teacher = self._teacher[0]
        if next(teacher.parameters()).device != input_ids.device:
            teacher.to(input_ids.device)
        with torch.no_grad():
            t = teacher(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][mask]
        if t.shape[-1] != s.shape[-1]:
            raise ConfigError(f"kd: the teacher's logits have {t.shape[-1]} entries and the student's {s.shape[-1]}: "
                              "they need the same vocabulary")
        d = divergence(s, t, o.divergence, o.temperature, o.beta).mean()
        return {"loss": o.alpha * ce + (1 - o.alpha) * o.temperature ** 2 * d}


class KnowledgeDistillation(FineTuneCoT):
    name = "kd"
    paper = "Hinton et al. 2015 (logit distillation); Agarwal et al. 2024, GKD (divergences) on Fine-tune-CoT pairs"
    Options: ClassVar[type[KDOptions]] = KDOptions
    owns_training = True

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
        return TrainingParts(KDModule(model, teacher, self.opts), tp, self.pairs(val, rationales, seq2seq), len(tp),
                             encode=lambda pairs, n: encode_pairs(pairs, tok, seq2seq, n),
                             collator=Collator(tok.pad_token_id))
