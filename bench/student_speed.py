"""CPU training speed of a pretrained causal-LM student under each precision and size setting, side
by side in one run on the same pairs: fp32, bf16 autocast, LoRA (fp32 and bf16) and a layer subset.

Every setting trains a fresh copy of the same student (`pretrained:smollm2-135m` by default) with
cotdistill's trainer for the same optimizer steps over the same `ft_cot` pairs (released
text-davinci-002 rationales of the official Coin Flip train split, or the exact teacher's synthetic
rationales without ../shared/data), at the same batch size, warm-up and constant schedule. Full
fine-tuning uses --lr; LoRA adapts the attention projections (r 16) at --lora-lr, as LoRA is trained.
Measured: target tokens (tokens that carry loss) per second of the whole training call, peak
resident memory of the whole run, and the validation loss (fp32, over the validation pairs' target tokens, one
definition for every setting) after those steps.

    python bench/student_speed.py --out runs/student_speed --data ../shared/data [--steps 40] [--quick]

Prints the table last; writes OUT/summary.json = {"target_tokens_per_s": {...}, "ratio_to_fp32":
{...}, "val_loss": {...}, "seconds": {...}, "setup": {...}}; settings already measured (in
OUT/settings/NAME.json) are read back, so an interrupted run resumes.
"""
from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

from cotdistill.config import LoraSettings, TrainConfig
from cotdistill.io import write_json
from cotdistill.students import load_student
from cotdistill.students.data import encode_pairs
from cotdistill.students.lora import add_lora
from cotdistill.students.train import train_student

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)
from train_speed import curated_pairs, val_loss  # noqa: E402

# name -> (bf16 autocast, LoRA, kept layers or None for all)
SETTINGS = {
    "fp32": (False, False, None),
    "bf16": (True, False, None),
    "lora_fp32": (False, True, None),
    "lora_bf16": (True, True, None),
    "layers10_fp32": (False, False, 10),
    "layers10_bf16": (True, False, 10),
}


def measure(name: str, args, train, val, out: Path) -> dict:
    bf16, lora, layers = SETTINGS[name]
    if args.quick and layers:
        layers = 2
    model, tok, _ = load_student(args.student, seed=0, layers=layers or args.layers)
    if lora:
        model = add_lora(model, LoraSettings(r=16, alpha=32))
    cfg = TrainConfig(max_steps=args.steps, batch_size=args.batch_size,
                      learning_rate=args.lora_lr if lora else args.lr, warmup_steps=min(args.warmup, args.steps // 4),
                      eval_every=args.steps, val_fraction=0.0, resume=False, bf16=bf16, packing=True)
    folder = out / "settings" / name
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    train_student(model, tok, False, train, [], cfg, folder)
    seconds = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    feats, _ = encode_pairs(train, tok, False, 10**6)
    per_example = sum(sum(1 for t in f["labels"] if t != -100) for f in feats) / len(feats)
    tokens = per_example * args.steps * args.batch_size
    result = {"seconds": round(seconds, 1), "target_tokens_per_s": round(tokens / seconds, 1),
              "val_loss": round(val_loss(model, tok, val), 4),
              "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    print(f"{name}: {result}", flush=True)
    return result


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "student_speed", student="pretrained:smollm2-135m", data=True, steps=40, batch_size=8,
                        quick="smoke run: 2-layer student, 2 steps, synthetic data")
    ap.add_argument("--task", default="coin_flip", help="released rationales of this task (with --data)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lora-lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = harness.parse(ap, argv)
    if args.quick:
        args.steps, args.batch_size, args.layers, args.data = 2, 2, 2, args.out / "no-shared-data"
    if args.threads:
        torch.set_num_threads(args.threads)
    train, val, what = curated_pairs(args.out, args.data, args.task, 40 if args.quick else 2000)
    if args.quick:
        val = val[:8]
    print(f"data: {what}; {len(train)} training pairs, {len(val)} validation", flush=True)
    results = {}
    for name in args.settings:
        done = args.out / "settings" / f"{name}.json"
        if done.exists():
            results[name] = json.loads(done.read_text())
            print(f"{name}: measured before, read back from {done}", flush=True)
            continue
        results[name] = measure(name, args, train, val, args.out)
        write_json(done, results[name])
    ref = results.get("fp32", {}).get("target_tokens_per_s")
    summary = {
        "target_tokens_per_s": {k: r["target_tokens_per_s"] for k, r in results.items()},
        "ratio_to_fp32": {k: round(r["target_tokens_per_s"] / ref, 2) for k, r in results.items()} if ref else {},
        "val_loss": {k: r["val_loss"] for k, r in results.items()},
        "seconds": {k: r["seconds"] for k, r in results.items()},
        "trainable_parameters": {k: r["trainable_parameters"] for k, r in results.items()},
        "setup": {"data": what, "student": args.student, "train_pairs": len(train), "val_pairs": len(val),
                  "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "lora_lr": args.lora_lr,
                  "threads": torch.get_num_threads(), "quick": args.quick,
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)},
    }
    harness.write_summary(args.out, summary)
    harness.print_table(["setting", "target tok/s", "x fp32", "val loss", "seconds", "trainable"],
                        [[k, f"{r['target_tokens_per_s']:.0f}", f"{summary['ratio_to_fp32'].get(k, float('nan')):.2f}",
                          f"{r['val_loss']:.4f}", f"{r['seconds']:.1f}", r["trainable_parameters"]]
                         for k, r in results.items()])
    print(f"-> {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
