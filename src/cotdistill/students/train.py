"""Student training on the transformers Trainer (one loop for every method and architecture).

A validation split (carved from the training questions by the caller) picks the best
checkpoint by validation loss; the test split is never looked at here. Checkpoints land in
`out_dir/checkpoints` so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import hf  # noqa: F401  (its warning filters apply to training too)
from ..errors import ConfigError, DataError
from ..io import read_jsonl_list
from .data import Collator, encode_pairs
from .packing import PackedCollator, can_pack, packed_attention
from .pretrained import NEW_PARTS_ATTR

log = logging.getLogger(__name__)
# What the loop writes in the folder it trains in (runs.MethodFolder names them for everyone else).
CHECKPOINTS = "checkpoints"  # the Trainer's checkpoints, resumed from
LOG_FILE = "train_log.jsonl"  # written by the caller next to `checkpoints/`
LOGS_DIR = "logs"  # TensorBoard event files (train.report_to: [tensorboard])


@dataclass
class TrainResult:
    steps: int
    train_pairs: int
    val_pairs: int
    skipped_overlong: int
    best_val_loss: float | None
    best_step: int | None
    max_target_tokens: int = 0
    history: list[dict] = field(default_factory=list)
    tokens_per_example: float | None = None  # mean training sequence length (source + target)


def split_new_parts(optimizer, model, scale: float) -> int:
    """Give the parameters a warm-started student added new (named by the model config's
    `cotdistill_new_parameters`, e.g. cross-attention) `scale` x the learning rate of their group:
    they start from random weights while the rest is pretrained. Returns how many were scaled."""
    fragments = getattr(model, "new_parameter_fragments", None) or \
        getattr(getattr(model, "config", None), NEW_PARTS_ATTR, None) or []
    new = {id(p) for n, p in model.named_parameters() if any(f in n for f in fragments)}
    if scale == 1.0 or not new:
        return 0
    groups = []
    for g in optimizer.param_groups:
        for is_new in (False, True):
            params = [p for p in g["params"] if (id(p) in new) == is_new]
            if params:
                groups.append({**g, "params": params, "lr": g["lr"] * (scale if is_new else 1.0)})
    optimizer.param_groups.clear()
    for g in groups:
        optimizer.add_param_group(g)
    return len(new)


def token_losses(model, inputs: dict):
    """(loss of every target position, flattened; its mask; the targets [rows, positions]; outputs)."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    if model.config.is_encoder_decoder:
        outputs = model(**inputs, labels=labels)
        logits, tgt = outputs.logits, labels
    else:
        outputs = model(**inputs)
        logits, tgt = outputs.logits[:, :-1], labels[:, 1:]
    tok_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100, reduction="none")
    return tok_loss, (tgt != -100).reshape(-1).float(), tgt, outputs


def weighted_loss(model, inputs: dict, weights: torch.Tensor, seq_idx: torch.Tensor | None = None):
    """(loss, outputs): each example's mean target-token loss, averaged with the examples' weights.
    `seq_idx` (packed rows) names the example of each token; without it each row is one example."""
    tok_loss, mask, tgt, outputs = token_losses(model, inputs)
    if seq_idx is None:
        seq = torch.arange(tgt.size(0), device=tgt.device).repeat_interleave(tgt.size(1))
    else:
        seq = seq_idx[:, 1:].reshape(-1).long().to(tgt.device)
    n = weights.numel()
    per_seq = torch.zeros(n, device=tok_loss.device).index_add_(0, seq, tok_loss * mask) / \
        torch.zeros(n, device=tok_loss.device).index_add_(0, seq, mask).clamp(min=1)
    return (per_seq * weights.to(per_seq.device)).sum() / weights.sum(), outputs


def _trainer_cls(seq2seq: bool):
    from transformers import Seq2SeqTrainer, Trainer

    class WeightedTrainer(Seq2SeqTrainer if seq2seq else Trainer):
        """Per-pair loss weights (multi-task methods); uniform weights use the model's own loss.
        New parts of a warm-started student may learn faster (`train.new_parts_lr_scale`)."""

        new_parts_lr_scale = 1.0

        def create_optimizer(self, model=None):
            fresh = self.optimizer is None
            optimizer = super().create_optimizer(model)
            if fresh:
                n = split_new_parts(optimizer, self.model if model is None else model, self.new_parts_lr_scale)
                if n:
                    log.info("%d new parameter tensors train at %g x the learning rate", n, self.new_parts_lr_scale)
            return optimizer

        group_lengths: list[int] | None = None

        def _get_train_sampler(self, train_dataset=None):
            if self.group_lengths is None:
                return super()._get_train_sampler(train_dataset)
            from transformers.trainer_pt_utils import LengthGroupedSampler

            # By source + target length: transformers would look at the source alone, and for an
            # encoder-decoder the target is most of the padding.
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=self.group_lengths)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop("weights")
            seq_idx = inputs.pop("seq_idx", None)  # packed rows: the example of each token
            if torch.all(weights == 1.0):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss, outputs = weighted_loss(model, inputs, weights, seq_idx)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


class GroupLosses:
    """Validation loss per target token of named groups of pairs (e.g. the kind of segment an
    AS-ES step writes), at every evaluation, merged into that evaluation's log row as
    `eval_loss_GROUP`: the curves that show which part of a target a student learns when."""

    def __init__(self, groups: dict[str, list[dict]], collator, batch_size: int):
        self.groups, self.collator, self.batch_size = groups, collator, batch_size

    def losses(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        out = {}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for name, feats in self.groups.items():
                total = count = 0.0
                for i in range(0, len(feats), self.batch_size):
                    batch = self.collator(feats[i:i + self.batch_size])
                    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()
                             if k not in ("weights", "seq_idx")}
                    if hasattr(model, "target_loss"):  # a method's own module: it knows its students
                        loss_sum, n = model.target_loss(batch)
                    else:
                        tok_loss, mask, _, _ = token_losses(model, batch)
                        loss_sum, n = (tok_loss * mask).sum(), mask.sum()
                    total += float(loss_sum)
                    count += float(n)
                if count:
                    out[f"eval_loss_{name}"] = round(total / count, 4)
        model.train(was_training)
        return out

    def callback(self):
        from transformers import TrainerCallback

        group = self

        class Callback(TrainerCallback):
            def on_evaluate(self, args, state, control, model=None, **kw):
                # The Trainer logs an evaluation's metrics before this call: add to that row.
                row = state.log_history[-1] if state.log_history and "eval_loss" in state.log_history[-1] else None
                losses = group.losses(model)
                if row is not None and row.get("step") == state.global_step:
                    row.update(losses)
                else:
                    state.log_history.append({"step": state.global_step, **losses})
        return Callback()


def train_student(
    model, tok, seq2seq: bool, train_pairs: list, val_pairs: list, cfg, out_dir: str | Path,
    progress: Callable[[int], None] | None = None, encode: Callable[[list, int], tuple[list[dict], int]] | None = None,
    collator: Callable[[list[dict]], dict] | None = None, groups: dict[str, list] | None = None,
) -> TrainResult:
    """Train on text pairs, or, for a method that owns its inputs and loss (methods/base.py
    TrainingParts), on whatever `encode(items, max_tokens) -> (features, skipped)` makes of its
    items, batched by `collator`, with `model` a module whose forward returns {"loss": ...}.
    `groups`: validation items by name (pairs, or items `encode` takes) whose loss per target token
    is logged at every evaluation (`GroupLosses`; a module of the method's own gives it with
    `target_loss(batch) -> (sum, tokens)`)."""
    from transformers import Seq2SeqTrainingArguments, TrainerCallback, TrainingArguments

    out_dir = Path(out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from ..hf import max_positions

    positions = max_positions(model)
    limit = min(cfg.max_length, positions or cfg.max_length)  # BERT: 512 positions
    where = f"{limit} tokens (train.max_length={cfg.max_length}, model positions {positions})"
    encode = encode or (lambda items, n: encode_pairs(items, tok, seq2seq, n))
    train_feats, skip_t = encode(train_pairs, limit)
    val_feats, skip_v = encode(val_pairs, limit)
    skipped = skip_t + skip_v
    if skipped:
        log.warning("skipped %d training sequences longer than %s", skipped, where)
    if not train_feats:
        raise DataError(
            f"no training sequences left: {len(train_pairs)} pairs, {skip_t} over {where}"
            if train_pairs else "no training pairs (did curation keep any rationale?)"
        )
    longest = max((sum(1 for t in f["labels"] if t != -100) for f in train_feats if isinstance(f.get("labels"), list)),
                  default=0)  # generated targets only: a label index is not a sequence
    lengths = [len(f["input_ids"]) + (len(f["labels"]) if seq2seq and isinstance(f.get("labels"), list) else 0)
               for f in train_feats if "input_ids" in f]  # a method's own features may hold several views
    per_example = round(sum(lengths) / len(lengths), 1) if lengths else None
    ckpt_dir = out_dir / CHECKPOINTS
    last = last_checkpoint(ckpt_dir) if cfg.resume else None
    if last is not None:
        done = _finished(model, last, ckpt_dir, cfg.max_steps)
        if done is not None:
            steps, best, best_step, history = done
            if progress:
                progress(steps)
            return TrainResult(steps, len(train_feats), len(val_feats), skipped, best, best_step, longest, history,
                               per_example)

    class Hooks(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            if progress and state.global_step:  # resumed: the bar starts where the checkpoint left off
                progress(state.global_step)

        def on_step_end(self, args, state, control, **kw):
            if progress:
                progress(1)

    has_val = bool(val_feats)
    every = min(cfg.eval_every, cfg.max_steps)
    args = (Seq2SeqTrainingArguments if seq2seq else TrainingArguments)(
        output_dir=str(ckpt_dir), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size * 2, learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=_SCHEDULES[cfg.lr_schedule], weight_decay=cfg.weight_decay, seed=cfg.seed, data_seed=cfg.seed,
        eval_strategy="steps" if has_val else "no", eval_steps=every, save_strategy="steps", save_steps=every,
        save_total_limit=2, load_best_model_at_end=has_val, metric_for_best_model="eval_loss",
        greater_is_better=False, logging_steps=max(1, every // 5), disable_tqdm=True,
        report_to=[r for r in cfg.report_to if r != "tensorboard"], run_name=f"{out_dir.parent.name}/{out_dir.name}",
        remove_unused_columns=False, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
        prediction_loss_only=True,  # validation needs the loss only: no gathering of (batch x tokens x vocab) logits
        bf16=bf16_enabled(cfg), torch_compile=cfg.compile,
    )
    own_batches = collator is not None
    packed = _use_packing(cfg, model, seq2seq, own_batches=own_batches)
    grouped = _use_grouping(cfg, packed, own_batches)
    if collator is None:
        collator = PackedCollator() if packed else Collator(tok.pad_token_id)
    callbacks = [Hooks(), *_tensorboard(cfg, out_dir)]
    if groups and has_val:
        # Group items share the validation rows' limit; one over it is left out of its group's
        # figure (its whole row was already counted in skipped_overlong).
        encoded = {name: encode(pairs, limit)[0] for name, pairs in groups.items()}
        callbacks.append(GroupLosses(encoded, collator, cfg.batch_size * 2).callback())
    trainer = _trainer_cls(seq2seq)(
        model=model, args=args, train_dataset=train_feats, eval_dataset=val_feats or None,
        data_collator=collator, callbacks=callbacks,
    )
    trainer.new_parts_lr_scale = cfg.new_parts_lr_scale
    if grouped:
        trainer.group_lengths = [len(f["input_ids"]) + (len(f["labels"]) if seq2seq else 0) for f in train_feats]
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our progress bar and train_log.jsonl replace its prints
    if last is not None:
        log.info("resuming from %s", last)
    with packed_attention(model) if packed else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    best = trainer.state.best_metric
    best_step = step_of(trainer.state.best_model_checkpoint)
    # The state's log holds the steps before a resume too (restored from the checkpoint).
    history = [dict(h) for h in trainer.state.log_history]
    for h in history:
        if "loss" in h and not math.isfinite(h["loss"]):
            raise DataError(f"training diverged: loss {h['loss']} at step {h['step']}; lower train.learning_rate")
    return TrainResult(trainer.state.global_step, len(train_feats), len(val_feats), skipped, best, best_step,
                       longest, history, per_example)


# train.lr_schedule -> the transformers scheduler (each warms up for warmup_steps first).
_SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


def _tensorboard(cfg, out_dir: Path) -> list:
    """TensorBoard's callback writing to METHOD/logs: transformers' default folder is inside
    output_dir (METHOD/checkpoints), which train.keep_checkpoints: false deletes."""
    if "tensorboard" not in cfg.report_to:
        return []
    from transformers.integrations import TensorBoardCallback

    cb = TensorBoardCallback()
    cb.logging_dir = str(out_dir / LOGS_DIR)
    return [cb]


def bf16_enabled(cfg) -> bool:
    gpu = torch.cuda.is_available()
    if cfg.bf16 == "native":
        return torch.cuda.is_bf16_supported() if gpu else native_cpu_bf16()
    if cfg.bf16 is not None:
        return cfg.bf16
    return gpu and torch.cuda.is_bf16_supported()


def native_cpu_bf16() -> bool:
    """The CPU has bf16 instructions (AVX512-BF16 or AMX); elsewhere bf16 autocast is emulated, and slower."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def _use_packing(cfg, model, seq2seq: bool, own_batches: bool) -> bool:
    if cfg.packing is False:
        return False
    ok = can_pack(model, seq2seq) and not own_batches
    if cfg.packing and not ok:
        why = ("the method batches its own inputs" if own_batches else
               f"{type(model).__name__} is not a decoder-only model on transformers' attention functions")
        raise ConfigError(f"train.packing is on but {why}; set train.packing: false (or leave it unset)")
    return ok


def _use_grouping(cfg, packed: bool, own_batches: bool) -> bool:
    """Length grouping measures text pairs; a method that batches its own features (masked-LM
    methods: several views per example) has no single sequence length to group by."""
    if cfg.group_by_length is None:
        return not (packed or own_batches)
    if cfg.group_by_length and own_batches:
        raise ConfigError("train.group_by_length is on but the method batches its own inputs; "
                          "set train.group_by_length: false (or leave it unset)")
    return cfg.group_by_length


def step_of(checkpoint: str | Path | None) -> int | None:
    return int(str(checkpoint).rsplit("-", 1)[1]) if checkpoint else None


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The highest-step complete checkpoint (numerically: checkpoint-1200 comes after
    checkpoint-600). Unlike transformers' get_last_checkpoint, a folder without trainer_state.json
    (a kill during its save) is passed over."""
    found = [p for p in ckpt_dir.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()
             and (p / "trainer_state.json").exists()] if ckpt_dir.is_dir() else []
    return max(found, key=step_of) if found else None


def _finished(model, last: Path, ckpt_dir: Path, max_steps: int):
    """A checkpoint that already reached the step budget: load its best weights into `model` and
    return (steps, best loss, best step, log) instead of training. transformers resumes a finished
    run by one extra step, which would make a rerun change the model."""
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(last / "trainer_state.json"))
    if state.global_step < max_steps:
        return None
    if state.global_step > max_steps:
        log.warning("%s is past train.max_steps=%d: keeping its %d steps", last, max_steps, state.global_step)
    # The run folder may have moved since: find the best checkpoint by name under this folder.
    best = ckpt_dir / Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
    src = best if best is not None and best.is_dir() else last
    log.info("training already finished at step %d: loading %s", state.global_step, src)
    from .lora import is_lora

    if is_lora(model):  # LoRA: the checkpoint holds the adapters only
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(src / "adapter_model.safetensors")))
    elif hasattr(type(model), "from_pretrained"):
        model.load_state_dict(type(model).from_pretrained(str(src)).state_dict())
    else:  # a method's own module: the Trainer saved its state dict
        from safetensors.torch import load_file

        result = model.load_state_dict(load_file(str(src / "model.safetensors")), strict=False)
        if result.unexpected_keys:  # missing ones are tied weights the module saved once
            raise DataError(f"{src}: checkpoint does not fit the model: unexpected {result.unexpected_keys[:4]}")
    # The log written when that training ended also holds its closing record, which the checkpoint lacks.
    written = ckpt_dir.parent / LOG_FILE
    history = read_jsonl_list(written) if written.exists() else [dict(h) for h in state.log_history]
    return state.global_step, state.best_metric, step_of(state.best_model_checkpoint), history
