"""Training speed: cotdistill's trainer against TRL's SFTTrainer and the plain transformers Trainer,
side by side in one run, on the same student and the same curated rationale data.

Each trainer trains a fresh copy of the same student (same initial weights) for the same epochs
over the same `ft_cot` training pairs (`{question}\\nA: Let's think step by step.` -> rationale +
answer), with the same batch size in examples, learning rate, warm-up and constant schedule, the
loss on the target only. Measured: target tokens (tokens that carry loss) per second of wall clock
for the whole call (tokenising included), and the validation loss (mean over the validation
pairs' target tokens, computed the same way for every model) after the same target tokens.

    (a) cotdistill   students.train.train_student (packing on where exact, length grouping otherwise)
    (b) trl_default  trl.SFTTrainer with its defaults (prompt-completion data: completion-only loss,
                     activation checkpointing on, no packing); bf16 off as the CPU requires
    (c) trl_packing  the same with packing=True (best-fit-decreasing rows of max_length, padding-free)
    (d) hf_trainer   transformers.Trainer with DataCollatorForSeq2Seq (dynamic padding)

Prints the table last; writes OUT/summary.json = {"target_tokens_per_s": {...}, "ratio_to_trl_default":
{...}, "val_loss": {...}, "seconds": {...}, "bars": {...}, "setup": {...}}; setup.tokens_per_example
compares the byte-level tokenizer with a BPE trained on the same training text (from-scratch presets). TRL is a bench-only extra:
`pip install -e ".[bench]"`.

    python bench/train_speed.py --out runs/train_speed [--data ../shared/data] [--student preset:small] [--quick]
"""
from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

import torch

from cotdistill.config import TrainConfig
from cotdistill.pipeline import Run, rationales_by_question
from cotdistill.students import load_student
from cotdistill.students.data import Collator, encode_pairs
from cotdistill.students.train import train_student

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)
from finetune_cot_replay import teacher_file  # noqa: E402

TRAINERS = ["cotdistill", "trl_default", "trl_packing", "hf_trainer"]


def curated_pairs(out: Path, data: Path, task: str, n_train: int) -> tuple[list, list, str]:
    """The `ft_cot` pairs of the run's curated rationales: released teacher rationales when the
    shared data is there, else the exact teacher on a synthetic mix of short and long rationales."""
    if teacher_file(data, task).exists():
        sections = {"task": {"source": "benchmark", "name": task, "data_dir": str(data), "n_train": 0},
                    "teacher": {"backend": "replay", "path": str(teacher_file(data, task))}}
        what = f"{task}: released text-davinci-002 rationales"
    else:
        sections = {"task": {"source": "synthetic", "name": "mixed", "n_train": n_train, "n_test": 10},
                    "teacher": {"backend": "exact"}}
        what = "synthetic mix (last letters, 2- and 4-step sums): exact-teacher rationales"
    cfg = harness.config({"out": str(out / "data"), "methods": ["ft_cot"]}, sections)
    run = Run(cfg)
    train, _, curated = run.prepare()
    by_q = rationales_by_question(curated)
    tr, va = run.split_val(train)
    method = cfg.method("ft_cot")

    def pairs(exs):
        return method.pairs(exs, by_q, False)

    return pairs(tr), pairs(va), what


def val_loss(model, tok, pairs, batch: int = 16) -> float:
    """Mean loss over all validation target tokens (one definition for every trainer's model)."""
    feats, _ = encode_pairs(pairs, tok, False, 10**6)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            b = Collator(tok.pad_token_id)(feats[i: i + batch])
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1]
            tgt = b["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((tgt != -100).sum())
    return total / max(1, count)


def hparams(args, n_pairs: int) -> dict:
    return {"batch_size": args.batch_size, "learning_rate": args.lr, "warmup_steps": args.warmup,
            "max_steps": max(1, math.ceil(args.epochs * n_pairs / args.batch_size)) if args.steps is None else args.steps}


def tokens_per_example(train, byte_tok, vocab_size: int) -> dict:
    """Mean training sequence length (source + target) under the byte-level tokenizer and under a BPE
    trained on the same training text (`student.tokenizer: bpe`), as a run would train it."""
    from cotdistill.students.presets import bpe_tokenizer

    bpe = bpe_tokenizer([t for p in train for t in (p.source, p.target)], vocab_size)
    out = {}
    for name, tk in (("byte", byte_tok), (f"bpe_{vocab_size}", bpe)):
        feats, _ = encode_pairs(train, tk, False, 10**6)
        out[name] = round(sum(len(f["input_ids"]) for f in feats) / len(feats), 1)
    return out


def run_cotdistill(model, tok, train, val, h, out: Path) -> None:
    cfg = TrainConfig(max_steps=h["max_steps"], batch_size=h["batch_size"], learning_rate=h["learning_rate"],
                      warmup_steps=h["warmup_steps"], eval_every=h["max_steps"], val_fraction=0.0, resume=False)
    train_student(model, tok, False, train, [], cfg, out)


def _hf_common(h, out: Path) -> dict:
    return dict(output_dir=str(out), max_steps=h["max_steps"], per_device_train_batch_size=h["batch_size"],
                learning_rate=h["learning_rate"], warmup_steps=h["warmup_steps"], lr_scheduler_type="constant_with_warmup",
                save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                logging_steps=max(1, h["max_steps"] // 5), seed=0, data_seed=0, dataloader_num_workers=0)


def run_trl(model, tok, train, val, h, out: Path, packing: bool) -> None:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    ds = Dataset.from_list([{"prompt": p.source, "completion": p.target} for p in train])
    args = SFTConfig(**_hf_common(h, out), bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                     packing=packing, max_length=1024)
    if packing:  # packed rows of max_length hold several examples: the same epochs need fewer steps
        args.max_steps = -1
        args.num_train_epochs = h["epochs"]
    SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok).train()


def run_hf(model, tok, train, val, h, out: Path) -> None:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    feats, _ = encode_pairs(train, tok, False, 1024)
    feats = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in feats]
    Trainer(model=model, args=TrainingArguments(**_hf_common(h, out)), train_dataset=feats,
            data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)).train()


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "train_speed", student="preset:small", data=True, steps=None, batch_size=16,
                        quick="smoke run: tiny student, 120 synthetic questions, 0.5 epoch")
    ap.add_argument("--task", default="multiarith", help="released rationales of this task (with --data)")
    ap.add_argument("--epochs", type=float, default=2.0, help="passes over the pairs (--steps: optimizer steps "
                    "instead, not for trl_packing)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--vocab-size", type=int, default=2000, help="BPE vocabulary for the tokens-per-example figure")
    ap.add_argument("--trainers", nargs="+", default=TRAINERS, choices=TRAINERS)
    args = harness.parse(ap, argv)
    if args.quick:
        args.student, args.epochs, args.data = "preset:tiny", 0.5, args.out / "no-shared-data"
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(t.startswith("trl") for t in args.trainers):
        try:
            import trl  # noqa: F401
        except ImportError:
            sys.exit("bench/train_speed.py compares against TRL: pip install -e '.[bench]'")
    train, val, what = curated_pairs(args.out, args.data, args.task, 120 if args.quick else 2000)
    h = {**hparams(args, len(train)), "epochs": args.epochs}
    _, tok, _ = load_student(args.student, seed=0)
    feats, skipped = encode_pairs(train, tok, False, 1024)
    per_epoch = sum(sum(1 for t in f["labels"] if t != -100) for f in feats)
    target_tokens = per_epoch * h["max_steps"] * h["batch_size"] / len(feats)  # steps x batch examples
    lengths = [len(f["input_ids"]) for f in feats]
    print(f"data: {what}; {len(train)} training pairs ({skipped} over 1024 tokens), {len(val)} validation; "
          f"tokens per example mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}", flush=True)
    per_tok = tokens_per_example(train, tok, args.vocab_size) if args.student.startswith("preset:") else {}
    if per_tok:
        print("tokens per training example: " + ", ".join(f"{k} {v}" for k, v in per_tok.items()), flush=True)
    runners = {"cotdistill": run_cotdistill, "trl_default": lambda *a: run_trl(*a, packing=False),
               "trl_packing": lambda *a: run_trl(*a, packing=True), "hf_trainer": run_hf}
    tps, losses, secs = {}, {}, {}
    for name in args.trainers:
        model, tok, _ = load_student(args.student, seed=0)  # same initial weights for every trainer
        folder = args.out / name
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        runners[name](model, tok, train, val, h, folder)
        secs[name] = time.perf_counter() - t0
        tokens = per_epoch * args.epochs if name == "trl_packing" else target_tokens
        tps[name] = tokens / secs[name]
        losses[name] = val_loss(model, tok, val)
        print(f"{name}: {secs[name]:.1f} s, {tps[name]:.0f} target tokens/s, validation loss {losses[name]:.4f}", flush=True)
    ref = tps.get("trl_default")
    ratio = {k: round(v / ref, 2) for k, v in tps.items()} if ref else {}
    bars = {}
    if ref and "cotdistill" in tps:
        bars["cotdistill >= 1.5x trl_default"] = harness.bar(ratio["cotdistill"], 1.5, ratio["cotdistill"] >= 1.5)
        bars["val loss <= trl_default"] = harness.bar(round(losses["cotdistill"], 4), round(losses["trl_default"], 4),
                                                      losses["cotdistill"] <= losses["trl_default"] + 1e-3)
    if "trl_packing" in tps and "cotdistill" in tps:
        bars["cotdistill >= 1.0x trl_packing"] = harness.bar(round(tps["cotdistill"] / tps["trl_packing"], 2), 1.0,
                                                             tps["cotdistill"] >= tps["trl_packing"])
        bars["val loss <= trl_packing"] = harness.bar(round(losses["cotdistill"], 4), round(losses["trl_packing"], 4),
                                                      losses["cotdistill"] <= losses["trl_packing"] + 1e-3)
    summary = {"target_tokens_per_s": {k: round(v, 1) for k, v in tps.items()}, "ratio_to_trl_default": ratio,
               "val_loss": {k: round(v, 4) for k, v in losses.items()}, "seconds": {k: round(v, 1) for k, v in secs.items()},
               "bars": bars, "setup": {"data": what, "student": args.student, "train_pairs": len(train),
                                       "target_tokens_per_epoch": per_epoch, "tokens_per_example": per_tok, "threads": torch.get_num_threads(),
                                       **h, "quick": args.quick}}
    harness.write_summary(args.out, summary)
    harness.print_table(["trainer", "target tok/s", "x trl_default", "val loss", "seconds"],
                        [[k, f"{tps[k]:.0f}", f"{ratio.get(k, float('nan')):.2f}", f"{losses[k]:.4f}", f"{secs[k]:.1f}"]
                         for k in tps])
    harness.print_bars(bars)
    return 0


if __name__ == "__main__":
    sys.exit(main())
