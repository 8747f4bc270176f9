"""`adaptive`: adaptive thinking (Chen et al. 2024, "Distilling Reasoning Ability from LLMs with
Adaptive Thinking", arXiv:2404.09170).

One student learns both formats, each marked by a mode prefix on the prompt:
`pre: {q} ###` -> ` {r} --> {a}` (Fine-tune-CoT order) and `post: {q} ###` -> ` {a} --> {r}`
(encoder-decoder students drop ` ###` and the leading space). After the student is trained, it
answers held-out training questions in both modes; each question is labelled with the mode that
answered it correctly, `post` when both did (it is cheaper), and skipped when neither did (by
default). A perception module (`perception.py`: soft prompt + small head over the frozen
student) learns these labels and, at inference, routes each question to one mode. The route and
P(post) are recorded per prediction.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Literal

from pydantic import Field

from ..errors import ModelError
from ..io import write_jsonl
from ..tasks.answers import is_correct
from .base import Method, MethodOptions, Output
from .ft_cot import FineTuneCoT
from .perception import DIRNAME, LABELS, Perception
from .post import PostThinking

log = logging.getLogger(__name__)


class AdaptiveOptions(MethodOptions):
    route_fraction: float = Field(0.2, ge=0.0, lt=0.9, description=(
        "share of training questions kept out of student training; they and the validation split are "
        "answered in both modes to label routes for the perception module"))
    neither: Literal["skip", "pre", "post"] = Field("skip", description="label of a question neither mode answers")
    n_virtual_tokens: int = Field(8, ge=1, le=256, description="soft prompt length")
    head_hidden: int = Field(64, ge=0, description="hidden units of the perception head (0 = linear)")
    perception_steps: int = Field(300, ge=1, description="optimizer steps of the perception module, at most")
    perception_epochs: float = Field(20.0, gt=0, description=(
        "and at most this many passes over the labelled questions: every step runs the frozen student "
        "forward and backward, so a few hundred labels get a few dozen steps, not hundreds"))
    perception_lr: float = Field(3e-3, gt=0)
    perception_batch_size: int = Field(32, ge=1)
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="route to post when P(post) >= threshold")
    mode: Literal["auto", "pre", "post"] = Field("auto", description="auto: perception routes; pre/post: force one")
    router_check: bool = Field(True, description=(
        "route every question to the better single mode when the perception module's routes answer fewer "
        "held-out questions than that mode does (a router fit on lucky guesses, e.g. a post mode at chance "
        "on yes/no answers, otherwise costs accuracy)"))
    explain: bool = Field(False, description="post-mode questions also generate their rationale")


def router_check(records: list[dict], p_post: list[float], threshold: float) -> dict:
    """The perception module's routes against each single mode on the held-out questions it learnt
    from (every question, labelled or not): `fixed_mode` is the mode that answers more of them than
    the routes do (post on a tie: it is cheaper), or None when the routes do at least as well.
    Measured on the module's own training questions, the check can only catch a router that fails
    to fit its labels (such as labels that are coin tosses), not one that overfits them."""
    n = len(records)
    routes = ["post" if p >= threshold else "pre" for p in p_post]
    acc = {m: 100 * sum(r[f"{m}_correct"] for r in records) / n for m in LABELS}
    routed = 100 * sum(r[f"{m}_correct"] for r, m in zip(records, routes)) / n
    best = "post" if acc["post"] >= acc["pre"] else "pre"
    return {"routed_accuracy": round(routed, 2), "pre_accuracy": round(acc["pre"], 2),
            "post_accuracy": round(acc["post"], 2), "routed_to_post": round(sum(m == "post" for m in routes) / n, 4),
            "fixed_mode": best if acc[best] > routed else None}


class AdaptiveThinking(Method):
    name = "adaptive"
    uses_rationales = True
    paper = "Chen et al. 2024, arXiv:2404.09170"
    Options = AdaptiveOptions
    inference_options = frozenset({"threshold", "mode", "explain", "router_check"})
    columns = {"post_fraction": ("routed to post %", "share")}

    def __init__(self, options=None):
        super().__init__(options)
        # Each mode is the single-format method behind a prefix: its targets, stop rule and parsing.
        self.formats: dict[str, Method] = {"pre": FineTuneCoT(), "post": PostThinking({"explain": self.opts.explain})}
        self.perception: Perception | None = None

    def source(self, ex, seq2seq):
        return self.prefixed_source("post" if self.opts.mode == "post" else "pre", ex, seq2seq)

    def train_pairs(self, ex, rationales, seq2seq):
        return [dataclasses.replace(p, source=self.prefixed_source(mode, ex, seq2seq))
                for mode in LABELS for p in self.formats[mode].train_pairs(ex, rationales, seq2seq)]

    def parse(self, text, ex):
        return self.formats["pre"].parse(text, ex)

    def predict_mode(self, mode, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None):
        fmt = self.formats[mode]
        return self._generate_parse(model, tok, seq2seq, examples,
                                    [self.prefixed_source(mode, e, seq2seq) for e in examples], fmt.stop(),
                                    fmt.parse, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                    progress=progress)

    # -- inference: route, then generate each group in its mode ----------------------------------
    def predict(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None):
        n = len(examples)
        t0 = time.perf_counter()
        if self.opts.mode == "auto":
            if self.perception is None:
                raise ModelError("adaptive: no perception module loaded (load_extras was not called)")
            p_post = self.perception.p_post(model, tok, seq2seq, [e.question for e in examples], batch_size)
            fixed = self.perception.info.get("check", {}).get("fixed_mode") if self.opts.router_check else None
            modes = [fixed or ("post" if p >= self.opts.threshold else "pre") for p in p_post]
        else:
            p_post, modes = [None] * n, [self.opts.mode] * n
        route_s = (time.perf_counter() - t0) / max(1, n)
        outs: list[Output | None] = [None] * n
        for mode in LABELS:
            idx = [i for i in range(n) if modes[i] == mode]
            if not idx:
                continue
            got = self.predict_mode(mode, model, tok, seq2seq, [examples[i] for i in idx],
                                    max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
            for i, o in zip(idx, got):
                p = p_post[i]
                o.extra = {"mode": mode, "p_post": None if p is None else round(p, 4)}
                o.seconds = o.generated.duration_s + route_s
                outs[i] = o
        return outs  # type: ignore[return-value]

    # -- after training: label routes, fit and save the perception module ------------------------
    def held_out_fraction(self) -> float:
        return self.opts.route_fraction

    def label_routes(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None):
        """Answer each question in both modes: (labels as mode names or None, per-question records)."""
        got = {m: self.predict_mode(m, model, tok, seq2seq, examples, max_new_tokens=max_new_tokens,
                                    batch_size=batch_size, progress=progress) for m in LABELS}
        records = []
        for i, ex in enumerate(examples):
            gold = self.gold(ex)
            ok = {m: is_correct(got[m][i].parsed.answer, gold, ex.kind) for m in LABELS}
            label = "post" if ok["post"] else "pre" if ok["pre"] else (None if self.opts.neither == "skip"
                                                                        else self.opts.neither)
            records.append({"id": ex.id, "question": ex.question, "gold": gold, "pre_correct": ok["pre"],
                            "post_correct": ok["post"], "pre_tokens": got["pre"][i].generated.completion_tokens,
                            "post_tokens": got["post"][i].generated.completion_tokens, "label": label})
        return records

    def after_train(self, model, tok, seq2seq, held_out, model_dir, *, max_new_tokens, batch_size, reporter, **kw):
        if not held_out:
            from ..errors import ConfigError

            raise ConfigError("adaptive: no held-out questions to label routes with; raise "
                              "method_options.adaptive.route_fraction or train.val_fraction")
        with reporter.task("adaptive: answer held-out questions in both modes", 2 * len(held_out)) as adv:
            recs = self.label_routes(model, tok, seq2seq, held_out, max_new_tokens=max_new_tokens,
                                     batch_size=batch_size, progress=adv)
        labelled = [r for r in recs if r["label"] is not None]
        n = len(recs)
        stats = {
            "held_out_questions": n,
            "pre_accuracy": round(100 * sum(r["pre_correct"] for r in recs) / n, 2),
            "post_accuracy": round(100 * sum(r["post_correct"] for r in recs) / n, 2),
            "oracle_accuracy": round(100 * sum(r["pre_correct"] or r["post_correct"] for r in recs) / n, 2),
            "labels": {m: sum(r["label"] == m for r in recs) for m in LABELS},
            "skipped_neither": n - len(labelled),
        }
        fallback = None
        if not labelled:
            # Neither mode answers anything: route everything to the mode that costs fewer tokens.
            fallback = "no held-out question was answered correctly in either mode; the module learns to route all to post"
            log.warning("adaptive: %s", fallback)
            labelled = [{**r, "label": "post"} for r in recs]
        perception = Perception.for_student(model, self.opts.n_virtual_tokens, self.opts.head_hidden)
        steps = self.perception_steps(len(labelled))
        with reporter.task("adaptive: train perception module", steps) as adv:
            fit = perception.fit(model, tok, seq2seq, [r["question"] for r in labelled],
                                 [LABELS.index(r["label"]) for r in labelled], steps=steps,
                                 lr=self.opts.perception_lr, batch_size=self.opts.perception_batch_size, progress=adv)
        p_post = perception.p_post(model, tok, seq2seq, [r["question"] for r in recs], batch_size)
        check = router_check(recs, p_post, self.opts.threshold)
        if check["fixed_mode"]:
            log.warning("adaptive: the perception module's routes answer %.2f%% of the held-out questions, mode %s "
                        "alone %.2f%%: with router_check on, every question goes to %s", check["routed_accuracy"],
                        check["fixed_mode"], check[f"{check['fixed_mode']}_accuracy"], check["fixed_mode"])
        info = {**stats, "perception": fit, "check": check, **({"fallback": fallback} if fallback else {})}
        perception.info = info
        d = perception.save(model_dir / DIRNAME, info)
        write_jsonl(d / "route_labels.jsonl", recs)
        return {"routing": info}

    def perception_steps(self, n_labelled: int) -> int:
        """perception_steps, or fewer when that many would pass over the labels more than perception_epochs times."""
        o = self.opts
        return max(1, min(o.perception_steps, math.ceil(o.perception_epochs * n_labelled / o.perception_batch_size)))

    def load_extras(self, model_dir, model):
        if self.opts.mode != "auto":
            return self
        return self.holding(perception=Perception.load(model_dir / DIRNAME, next(model.parameters()).device))

    def metrics(self, preds):
        """The share of questions routed to post-thinking, and accuracy and tokens per mode."""
        routed = [p for p in preds if p.get("mode")]
        if not routed:
            return {}
        out: dict = {"post_fraction": round(sum(p["mode"] == "post" for p in routed) / len(routed), 4), "by_mode": {}}
        for mode in sorted({p["mode"] for p in routed}):
            sel = [p for p in routed if p["mode"] == mode]
            out["by_mode"][mode] = {"n": len(sel), "accuracy": round(100 * sum(p["correct"] for p in sel) / len(sel), 2),
                                    "mean_generated_tokens": round(sum(p["generated_tokens"] for p in sel) / len(sel), 2)}
        return out
