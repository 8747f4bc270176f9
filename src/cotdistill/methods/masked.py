"""What the masked-LM methods share (CoTT, one-step prompt tuning, fine-tuning with a head): the
label space with its intermediate step, verbalizers, prompts with [MASK] slots, the trainable
module around a BERT-style student, and classification metrics.

These methods own their inputs, loss and decoding: a question is classified, not answered in
words, so `encode` / `loss` / `predict` replace the text-pair path of the generating methods
while the training loop (students/train.py), checkpoints, evaluation and report stay shared.

Label words (verbalizer). Each label is scored at a [MASK] position by a learned label
embedding: transform(h_mask) . w_label + b_label, where `transform` is the MLM head transform
and w_label starts as the mean of the input embeddings of the label's words' word pieces (and
b_label as the mean of their MLM output biases). At the start of training a label's score is
therefore the mean of its sub-tokens' MLM logits, which handles multi-token labels such as
`comp.sys.ibm.pc.hardware`; training then moves each label embedding on its own, which also
separates labels whose words are the same (a relation and its reverse direction). Words come from
the label name by default and can be overridden per label (`verbalizer: {LABEL: "words"}`).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from ..errors import ConfigError, DataError, ModelError
from ..tasks.answers import normalize_gold
from ..tasks.schema import AnswerKind, Example
from ..tasks.understanding import parent_of, undirected
from .base import Method, MethodOptions, Output, Pair, Parsed, TrainingParts

HEADS_FILE = "label_heads.safetensors"
SPACE_FILE = "label_space.json"
_DIR_SUFFIX = re.compile(r"\((e[12]),(e[12])\)$")


class MaskedOptions(MethodOptions):
    verbalizer: dict[str, str] = Field(default_factory=dict, description="label -> words (default: from the label name)")
    separator: str = Field(".", min_length=1, description="label-path separator, when examples carry no intermediate")
    n_virtual_tokens: int = Field(8, ge=0, description="soft-prompt vectors after [CLS] (0: none)")
    full_finetune: bool = Field(True, description="train the encoder too; false: soft prompt and label heads only")
    max_length: int = Field(256, ge=16, description="input tokens; the text is cut to fit the prompt (counted)")


def default_words(label: str) -> str:
    """'comp.sys.ibm.pc.hardware' -> 'comp sys ibm pc hardware'; 'Cause-Effect(e2,e1)' -> 'cause effect'."""
    return " ".join(w for w in re.split(r"[\s._/\->()]+|(?<=[a-z])(?=[A-Z])", _DIR_SUFFIX.sub("", label)) if w).lower()


@dataclass
class LabelSpace:
    """Final labels, intermediate labels and each final label's intermediate (its parent)."""

    finals: list[str]
    inters: list[str]
    parent: dict[str, str]
    words: dict[str, str] = field(default_factory=dict)  # label (final or intermediate) -> verbalizer words

    @classmethod
    def from_examples(cls, examples: list[Example], separator: str, overrides: dict[str, str], method: str,
                      needs_intermediate: bool = True) -> "LabelSpace":
        """Without `needs_intermediate` (one-step methods), flat labels are their own parents."""
        parent: dict[str, str] = {}
        for ex in examples:
            inter = intermediate_of(ex, separator) if needs_intermediate else \
                (_intermediate_or_none(ex, separator) or ex.answer)
            if parent.setdefault(ex.answer, inter) != inter:
                raise DataError(f"example {ex.id!r}: label {ex.answer!r} has intermediate {inter!r} here but "
                                f"{parent[ex.answer]!r} elsewhere; a label must have one parent")
        finals = sorted(parent)
        inters = sorted(set(parent.values()))
        unknown = sorted(set(overrides) - set(finals) - set(inters))
        if unknown:
            raise ConfigError(f"`method_options.{method}.verbalizer`: unknown label(s) {unknown}; the training data's "
                              f"labels are {finals[:8]}{' ...' if len(finals) > 8 else ''} and intermediates {inters[:8]}")
        words = {lab: overrides.get(lab) or default_words(lab) for lab in [*finals, *inters]}
        empty = [lab for lab, w in words.items() if not w.strip()]
        if empty:
            raise ConfigError(f"`method_options.{method}.verbalizer`: no words for label(s) {empty}; name them")
        return cls(finals, inters, parent, words)

    def children(self) -> list[list[int]]:
        """For each intermediate, the indices of its final labels."""
        return [[j for j, f in enumerate(self.finals) if self.parent[f] == c] for c in self.inters]

    def to_json(self) -> dict:
        return {"finals": self.finals, "inters": self.inters, "parent": self.parent, "words": self.words}

    @classmethod
    def from_json(cls, d: dict) -> "LabelSpace":
        return cls(d["finals"], d["inters"], d["parent"], d["words"])


def intermediate_of(ex: Example, separator: str = ".") -> str:
    """The gold intermediate step: the example's own (`metadata.intermediate`, set by the built-in
    loaders or a mapped column), else the top level of its label path."""
    inter = ex.metadata.get("intermediate")
    if isinstance(inter, str) and inter.strip():
        return inter.strip()
    if is_relation(ex):
        return undirected(ex.answer)
    got = parent_of(ex.answer, separator)
    if got is None:
        raise DataError(f"example {ex.id!r}: label {ex.answer!r} has no {separator!r} path separator and the example "
                        f"has no intermediate step; use hierarchical labels such as 'comp.graphics', set "
                        f"`method_options.*.separator`, or map a parent column with `task.columns.intermediate`")
    return got


def _intermediate_or_none(ex: Example, separator: str) -> str | None:
    try:
        return intermediate_of(ex, separator)
    except DataError:
        return None


def is_relation(ex: Example) -> bool:
    return "head_span" in ex.metadata and "tail_span" in ex.metadata


def marked_text(ex: Example) -> tuple[str, str, str]:
    """(text with the head entity in '@ .. @' and the tail in '# .. #', head, tail) for relation
    examples; (text, '', '') otherwise."""
    if not is_relation(ex):
        return ex.question, "", ""
    text = ex.question
    (hs, he), (ts, te) = ex.metadata["head_span"], ex.metadata["tail_span"]
    head, tail = text[hs:he], text[ts:te]
    marks = sorted([(hs, " @ "), (he, " @ "), (ts, " # "), (te, " # ")], key=lambda x: x[0], reverse=True)
    for at, mark in marks:
        text = text[:at] + mark + text[at:]
    return " ".join(text.split()), head, tail


# Default prompts: `{mask}` is the slot the MLM fills; `{inter}` the intermediate step in words.
PROMPTS = {
    "hierarchy": {"one": "topic : {mask} .", "step1": "category : {mask} .",
                  "step2": "category : {inter} . topic : {mask} ."},
    "relation": {"one": "{head} {mask} {tail} .", "step1": "relation of {head} and {tail} : {mask} .",
                 "step2": "relation of {head} and {tail} : {inter} . {head} {mask} {tail} ."},
}


class Prompter:
    """Token ids of `[CLS] text [SEP] prompt [SEP]`, the text cut so that the prompt (and its
    [MASK]) always fits; returns the [MASK] position too."""

    def __init__(self, tok, max_length: int):
        if tok.mask_token_id is None:
            raise ModelError("the student's tokenizer has no [MASK] token: masked-LM methods need a masked-LM student "
                             "(e.g. pretrained:minilm-mlm or a BERT-style model)")
        self.tok, self.max_length = tok, max_length
        self.truncated = 0
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        if text not in self._cache:
            self._cache[text] = self.tok(text, add_special_tokens=False)["input_ids"]
        return self._cache[text]

    def build(self, text: str, prompt: str | None) -> tuple[list[int], int]:
        """`prompt=None`: `[CLS] text [SEP]` alone (a classification head reads [CLS]); position 0."""
        ids, positions = self.build_slots(text, prompt)
        return ids, positions[0] if positions else 0

    def build_slots(self, text: str, prompt: str | None) -> tuple[list[int], list[int]]:
        """Token ids and the position of every `{mask}` of the prompt, in order."""
        t = self.tok
        tail: list[int] = []
        slots: list[int] = []  # offsets inside the tail
        if prompt is not None:
            for i, part in enumerate(prompt.split("{mask}")):
                if i:
                    slots.append(len(tail))
                    tail.append(t.mask_token_id)
                tail.extend(self.ids(part))
            tail.append(t.sep_token_id)
        room = self.max_length - len(tail) - 2
        if room < 1:
            raise DataError(f"the prompt {prompt!r} needs {len(tail) + 3} tokens, over max_length {self.max_length}")
        body = self.tok(text, add_special_tokens=False, truncation=True, max_length=room + 1)["input_ids"]
        if len(body) > room:
            self.truncated += 1
            body = body[:room]
        ids = [t.cls_token_id, *body, t.sep_token_id, *tail]
        return ids, [len(body) + 2 + s for s in slots]


class LabelHead(nn.Module):
    """Scores every label at a [MASK] position: transform(h) . W^T + b (see the module docstring)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.weight.T + self.bias


class MaskedModule(nn.Module):
    """The trainable module of a masked-LM method: the student's encoder and MLM head transform,
    a soft prompt inserted after [CLS], and label heads. The full MLM (for save_pretrained) is
    kept outside the module tree so that tied output embeddings are not saved twice."""

    # What a warm start adds new (train.new_parts_lr_scale): everything but the pretrained encoder.
    new_parameter_fragments = ("transform.", "heads.", "prompt", "classifier.")

    def __init__(self, mlm, heads: dict[str, LabelHead], n_virtual_tokens: int, classifier: nn.Module | None = None):
        super().__init__()
        if not hasattr(mlm, "bert") or not hasattr(mlm, "cls"):
            raise ModelError(f"masked-LM methods support BERT-style masked LMs (BertForMaskedLM); got "
                             f"{type(mlm).__name__}")
        self.encoder = mlm.bert
        self.transform = mlm.cls.predictions.transform
        self.heads = nn.ModuleDict(heads)
        self.classifier = classifier
        emb = mlm.get_input_embeddings().weight
        self.prompt = nn.Parameter(emb.detach()[torch.randint(emb.shape[0], (n_virtual_tokens,))].clone()) \
            if n_virtual_tokens else None
        self.config = mlm.config  # for max_positions and the trainer; not a module
        object.__setattr__(self, "mlm", mlm)
        self.loss_fn = None  # set by the method: (module, batch) -> loss

    def hidden(self, ids: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        emb = self.encoder.embeddings.word_embeddings(ids)
        if self.prompt is not None:
            n = self.prompt.shape[0]
            p = self.prompt.unsqueeze(0).expand(ids.shape[0], -1, -1).to(emb.dtype)
            emb = torch.cat([emb[:, :1], p, emb[:, 1:]], 1)
            att = torch.cat([att[:, :1], att.new_ones(ids.shape[0], n), att[:, 1:]], 1)
        return self.encoder(inputs_embeds=emb, attention_mask=att).last_hidden_state

    def at_mask(self, ids, att, pos) -> torch.Tensor:
        return self.at_masks(ids, att, pos)[0]

    def at_masks(self, ids, att, *positions) -> list[torch.Tensor]:
        """The transformed hidden states at several [MASK] positions per row, from one encoder pass."""
        shift = self.prompt.shape[0] if self.prompt is not None else 0
        h = self.hidden(ids, att)
        rows = torch.arange(ids.shape[0], device=ids.device)
        return [self.transform(h[rows, pos + shift]) for pos in positions]

    def scores(self, head: str, ids, att, pos) -> torch.Tensor:
        """Log-probabilities over the head's labels at each row's [MASK]."""
        return self.scores_at(ids, att, (head, pos))[0]

    def scores_at(self, ids, att, *head_pos: tuple[str, torch.Tensor]) -> list[torch.Tensor]:
        """`scores` for several (head, [MASK] position) pairs, from one encoder pass."""
        hs = self.at_masks(ids, att, *(pos for _, pos in head_pos))
        return [torch.log_softmax(self.heads[head](h), -1) for (head, _), h in zip(head_pos, hs)]

    def cls_scores(self, ids, att) -> torch.Tensor:
        return torch.log_softmax(self.classifier(self.hidden(ids, att)[:, 0]), -1)

    def forward(self, labels=None, **batch):
        return {"loss": self.loss_fn(self, {**batch, "labels": labels})}


def label_head(mlm, tok, labels: list[str], words: dict[str, str]) -> LabelHead:
    """A head whose label embeddings start at the mean of their words' word-piece embeddings."""
    emb = mlm.get_input_embeddings().weight.detach()
    bias = mlm.cls.predictions.decoder.bias if getattr(mlm.cls.predictions.decoder, "bias", None) is not None \
        else mlm.cls.predictions.bias
    rows, biases = [], []
    for lab in labels:
        pieces = tok(words[lab], add_special_tokens=False)["input_ids"]
        if not pieces:
            raise ConfigError(f"label {lab!r}: its words {words[lab]!r} make no tokens")
        rows.append(emb[pieces].mean(0))
        biases.append(bias.detach()[pieces].mean())
    return LabelHead(torch.stack(rows), torch.stack(biases))


def pad_views(batch: list[dict], pad_id: int, views: tuple[str, ...]) -> dict:
    """Pad each view's token ids; positions and label indices become tensors."""
    out: dict[str, Any] = {}
    for v in views:
        seqs = [b[f"{v}_ids"] for b in batch]
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
        att = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            att[i, :len(s)] = 1
        out[f"{v}_ids"], out[f"{v}_att"] = ids, att
        for key in (k for k in batch[0] if k.startswith(f"{v}_") and k.endswith("pos")):  # s1_pos, s1_ypos
            out[key] = torch.tensor([b[key] for b in batch])
    for key in ("labels", "inter_labels", "cf_inter"):
        if key in batch[0]:
            out[key] = torch.tensor([b[key] for b in batch])
    out["weights"] = torch.ones(len(batch))
    return out


class MaskedMethod(Method):
    """Base of the masked-LM methods: a label space learnt from the training data, a module built
    around the student, features per example, a loss, and classification as prediction."""

    uses_rationales: ClassVar[bool] = False
    student_kind: ClassVar[str] = "masked"
    owns_training: ClassVar[bool] = True
    Options: ClassVar[type[MaskedOptions]] = MaskedOptions
    views: ClassVar[tuple[str, ...]] = ()
    heads: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self.space: LabelSpace | None = None
        self.module: MaskedModule | None = None
        self.prompter: Prompter | None = None

    # -- the text-pair contract does not apply ---------------------------------------------------
    def train_pairs(self, ex: Example, rationales: list[str], seq2seq: bool) -> list[Pair]:
        raise NotImplementedError(f"{self.name} trains on its own features (encode), not text pairs")

    def parse(self, text: str, ex: Example) -> Parsed:
        return Parsed(text or None, None)

    # -- building --------------------------------------------------------------------------------
    def build(self, model, tok, train: list[Example], seed: int = 0) -> "MaskedMethod":
        """This method holding what it trains: the label space of `train`, the module around a freshly
        loaded student, and the prompter that writes its inputs."""
        space = LabelSpace.from_examples(train, self.opts.separator, self.opts.verbalizer, self.name,
                                         needs_intermediate="inter" in self.heads)
        torch.manual_seed(seed)
        bound = self.holding(space=space, prompter=Prompter(tok, self.opts.max_length))
        bound.module = bound._module(model, tok)
        bound.module.loss_fn = bound.loss
        if not self.opts.full_finetune:
            for p in bound.module.encoder.parameters():
                p.requires_grad_(False)
        return bound

    def _module(self, model, tok) -> MaskedModule:
        sp = self.space
        heads = {"final": label_head(model, tok, sp.finals, sp.words)}
        if "inter" in self.heads:
            heads["inter"] = label_head(model, tok, sp.inters, sp.words)
        return MaskedModule(model, heads, self.opts.n_virtual_tokens)

    def training(self, model, tok, seq2seq, train, val, rationales, *, seed) -> TrainingParts:
        """The module around the student, trained on this method's features of each question."""
        bound = self.build(model, tok, train, seed=seed)
        return TrainingParts(bound.module, train, val, len(train), encode=bound.encode, collator=bound.collator(tok),
                             state=bound)

    def after_train(self, model, tok, seq2seq, held_out, model_dir: Path, *, parts, **kw) -> dict:
        return parts.state.save(model_dir)

    def save(self, model_dir: Path) -> dict:
        from safetensors.torch import save_file

        extra = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()
                 if not k.startswith(("encoder.", "transform."))}
        save_file(extra, str(model_dir / HEADS_FILE))
        (model_dir / SPACE_FILE).write_text(json.dumps({"method": self.name, **self.space.to_json()}, indent=1))
        return {"labels": len(self.space.finals), "intermediates": len(self.space.inters),
                "truncated_inputs": self.prompter.truncated if self.prompter else 0}

    def load_extras(self, model_dir: Path, model) -> "MaskedMethod":
        from safetensors.torch import load_file

        path = Path(model_dir) / SPACE_FILE
        if not path.exists():
            raise ModelError(f"{model_dir}: no {SPACE_FILE}; this model was not trained by {self.name}")
        d = json.loads(path.read_text())
        if d.get("method") != self.name:
            raise ModelError(f"{model_dir}: trained by {d.get('method')!r}, not {self.name!r}")
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir))
        bound = self.holding(space=LabelSpace.from_json(d), prompter=Prompter(tok, self.opts.max_length))
        bound.module = bound._module(model, tok)
        bound.module.loss_fn = bound.loss
        missing = bound.module.load_state_dict(load_file(str(Path(model_dir) / HEADS_FILE)), strict=False).missing_keys
        missing = [k for k in missing if not k.startswith(("encoder.", "transform."))]
        if missing:
            raise ModelError(f"{model_dir}/{HEADS_FILE}: missing {missing[:4]}")
        return bound

    # -- features --------------------------------------------------------------------------------
    def prompts(self, ex: Example) -> dict[str, str]:
        kind = "relation" if is_relation(ex) else "hierarchy"
        return PROMPTS[kind]

    def fill(self, prompt: str, ex: Example, inter: str | None = None) -> tuple[str, str]:
        """(text, prompt with entities and intermediate words filled, `{mask}` kept)."""
        text, head, tail = marked_text(ex)
        words = self.space.words.get(inter, inter) if inter is not None else ""
        return text, prompt.replace("{head}", head).replace("{tail}", tail).replace("{inter}", words or "")

    def encode(self, examples: list[Example], max_tokens: int) -> tuple[list[dict], int]:
        self.prompter.max_length = min(self.opts.max_length, max_tokens - (self.opts.n_virtual_tokens or 0))
        return [self.features(ex, i) for i, ex in enumerate(examples)], 0

    def features(self, ex: Example, index: int) -> dict:
        raise NotImplementedError

    def final_index(self, ex: Example) -> int:
        try:
            return self.space.finals.index(ex.answer)
        except ValueError:
            return -100  # a label unseen in training: scored as wrong at evaluation, ignored in the loss

    def collator(self, tok):
        views = self.views
        return lambda batch: pad_views(batch, tok.pad_token_id, views)

    def loss(self, module: MaskedModule, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, model, tok, seq2seq, examples, *, max_new_tokens, batch_size, progress=None) -> list[Output]:
        import time

        from ..hf import Generated

        if self.module is None:
            raise ModelError(f"{self.name}: no trained label heads loaded (load_extras was not called)")
        self.module.eval()
        outs: list[Output] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            t0 = time.perf_counter()
            with torch.no_grad():
                rows = self.classify(chunk)
            dt = (time.perf_counter() - t0) / len(chunk)
            for ex, (label, extra) in zip(chunk, rows):
                pred = normalize_gold(label, AnswerKind.label, None)
                outs.append(Output(Generated(label, "label", 0, 0, dt), Parsed(pred, None), extra=extra, seconds=dt))
            if progress:
                progress(len(chunk))
        return outs

    def classify(self, examples: list[Example]) -> list[tuple[str, dict]]:
        raise NotImplementedError

    def batch(self, rows: list[dict]) -> dict:
        dev = next(self.module.parameters()).device
        b = pad_views(rows, self.prompter.tok.pad_token_id, tuple({k[:-4] for k in rows[0] if k.endswith("_ids")}))
        return {k: v.to(dev) for k, v in b.items()}

    def metrics(self, preds: list[dict]) -> dict:
        out = {"macro_f1": macro_f1([p["gold"] for p in preds], [p["prediction"] for p in preds])}
        if preds and "gold_intermediate" in preds[0]:
            gi = [p["gold_intermediate"] for p in preds]
            pi = [p.get("intermediate") for p in preds]
            if all(x is not None for x in pi):
                out["intermediate_accuracy"] = agreement(gi, pi)
                out["intermediate_macro_f1"] = macro_f1(gi, pi)
            s1 = [p.get("step1_intermediate") for p in preds]
            if all(x is not None for x in s1):  # CoTT's step I before rectification
                out["step1_intermediate_accuracy"] = agreement(gi, s1)
        if preds and all(_DIR_SUFFIX.search(p["gold"] or "") or p["gold"] == "other" for p in preds):
            out["semeval_official_f1"] = semeval_official_f1([p["gold"] for p in preds], [p["prediction"] for p in preds])
        return out


def agreement(gold: list[str], pred: list[str | None]) -> float:
    """Share (in %) of positions where the prediction equals the gold label."""
    return round(100 * sum(g == p for g, p in zip(gold, pred)) / len(gold), 2)


def macro_f1(gold: list[str], pred: list[str | None]) -> float:
    """Macro-averaged F1 (in %) over the gold labels' classes."""
    classes = sorted(set(gold))
    f1s = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return round(100 * sum(f1s) / len(f1s), 2) if f1s else 0.0


def semeval_official_f1(gold: list[str], pred: list[str | None]) -> float:
    """SemEval-2010 Task 8's official score: macro-F1 over the 9 relations (Other excluded), with
    direction taken into account: a prediction counts as correct only with the right direction,
    while precision and recall of a relation count its predictions and gold labels in either
    direction (the task's scorer, "(9+1)-way evaluation taking directionality into account")."""
    def rel(x: str | None) -> str | None:
        return _DIR_SUFFIX.sub("", x) if x else None

    rels = sorted({rel(g) for g in gold if rel(g) != "other"})
    f1s = []
    for r in rels:
        correct = sum(g == p and rel(g) == r for g, p in zip(gold, pred))
        predicted = sum(rel(p) == r for p in pred)
        actual = sum(rel(g) == r for g in gold)
        prec = correct / predicted if predicted else 0.0
        recall = correct / actual if actual else 0.0
        f1s.append(2 * prec * recall / (prec + recall) if prec + recall else 0.0)
    return round(100 * sum(f1s) / len(f1s), 2) if f1s else 0.0


def wrong_intermediate(space: LabelSpace, gold: str, seed: int) -> int:
    """A counterfactual intermediate step (any but the gold one), fixed per example."""
    choices = [i for i, c in enumerate(space.inters) if c != gold]
    return random.Random(seed).choice(choices) if choices else space.inters.index(gold)
