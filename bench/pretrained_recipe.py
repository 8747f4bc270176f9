"""Choose the training recipe of pretrained students on validation data only.

Trains `ft_cot` students (`pretrained:minilm-seq2seq` by default, or `pretrained:smollm2-135m`) on the kept text-davinci-002
rationales of the official train split of each task, one per setting (learning rate x learning-rate
multiplier of the parts the warm start adds new, `train.new_parts_lr_scale`), with the same number
of epochs, and reports each one's best validation loss and validation accuracy (greedy answers on
the validation questions, which are carved from the training questions). The test split is never
read. The setting with the lowest mean validation loss is the recipe's.

    python bench/pretrained_recipe.py --data ../shared/data --out runs/recipe --layers 3 \\
        --lrs 5e-5 1e-4 3e-4 --scales 1 10 --epochs 10 --tasks coin_flip last_letter_concatenation
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (bench/ is not a package)
from finetune_cot_replay import teacher_file  # noqa: E402

from cotdistill.evaluate import predict, summarize  # noqa: E402
from cotdistill.pipeline import Run  # noqa: E402


def one(data: Path, out: Path, task: str, student: str, layers: int | None, lr: float, scale: float,
        epochs: float, extra: dict, overrides: list[str]) -> dict:
    """Train one setting (a rerun reuses a finished one) and score it on the validation questions."""
    cfg = harness.config({
        "out": str(out / task / (f"lr{lr:g}" + (f"-x{scale:g}" if scale != 1 else ""))),
        "task": {"source": "benchmark", "name": task, "data_dir": str(data), "n_train": 0},
        "teacher": {"backend": "replay", "path": str(teacher_file(data, task))},
        "student": harness.student_section(student, layers),
        "train": {"learning_rate": lr, "new_parts_lr_scale": scale, "epochs": epochs}, "methods": ["ft_cot"]},
        extra, overrides=overrides)
    run = Run(cfg)
    t0 = time.time()
    train, _, curated = run.prepare()
    info = run.train("ft_cot", train, curated)
    _, val = run.split_val(train)
    model, tok, seq2seq = run.load_trained(run.folder.model("ft_cot"))
    preds = predict(cfg.method("ft_cot"), model, tok, seq2seq, val, max_new_tokens=run.eval_max_new_tokens("ft_cot"),
                    batch_size=cfg.eval.batch_size)
    val_acc = summarize(preds)
    log = run.folder.method("ft_cot").train_log
    curve = [[r["step"], r["eval_loss"]] for r in map(json.loads, log.read_text().splitlines()) if "eval_loss" in r] \
        if log.exists() else []
    return {"lr": lr, "scale": scale, "best_val_loss": info["best_val_loss"], "best_step": info["best_step"], "steps": info["steps"],
            "val_accuracy": val_acc["accuracy"], "val_n": val_acc["n"], "minutes": round((time.time() - t0) / 60, 1),
            "val_loss_curve": curve}


def main(argv=None) -> int:
    ap = harness.parser(__doc__, "recipe", student="pretrained:minilm-seq2seq", data=True,
                        quick="smoke run: 1 layer, a few steps on 40 questions")
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 1e-4, 3e-4])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0],
                    help="learning-rate multipliers for the warm start's new parts (train.new_parts_lr_scale)")
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--tasks", nargs="+", default=["coin_flip"])
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every setting, e.g. train.bf16=true (repeatable; recorded in summary.json)")
    args = harness.parse(ap, argv)
    if not teacher_file(args.data, "coin_flip").exists():
        print(f"no teacher files under {args.data}; pass --data pointing at shared/data", file=sys.stderr)
        return 2
    extra: dict = {"train": {"keep_checkpoints": False}}
    if args.quick:
        extra = harness.merge(extra, {"task": {"n_train": 40}, "train": {"eval_every": 2, "batch_size": 8},
                                      "eval": {"max_new_tokens": 8}})
    layers, epochs = (1, 0.5) if args.quick else (args.layers, args.epochs)
    results: dict = {}
    settings = [(lr, scale) for lr in args.lrs for scale in args.scales]
    for task in args.tasks:
        results[task] = [one(args.data, args.out, task, args.student, layers, lr, scale, epochs, extra, args.sets)
                         for lr, scale in settings]
        harness.write_summary(args.out, {"student": args.student, "layers": layers, "epochs": epochs,
                                                "overrides": args.sets, "tasks": results})
    mean_loss = {key(lr, scale): sum(r["best_val_loss"] for t in results.values() for r in t
                                     if (r["lr"], r["scale"]) == (lr, scale)) / len(results)
                 for lr, scale in settings}
    best_lr, best_scale = min(settings, key=lambda s: mean_loss[key(*s)])
    chosen = {"learning_rate": best_lr, "new_parts_lr_scale": best_scale}
    harness.write_summary(args.out, {"student": args.student, "layers": layers, "epochs": epochs,
                                            "overrides": args.sets, "tasks": results, "mean_val_loss": mean_loss,
                                            "chosen": chosen})
    print(f"\nft_cot, {args.student} ({layers} layers), {epochs} epochs; validation split only")
    print(f"{'task':28} {'lr':>8} {'new x':>6} {'best val loss':>14} {'best/steps':>11} {'val acc %':>10} {'min':>5}")
    for task, rows in results.items():
        for r in rows:
            print(f"{task:28} {r['lr']:8.0e} {r['scale']:6g} {r['best_val_loss']:14.4f} {r['best_step']:>5}/{r['steps']:<5} "
                  f"{r['val_accuracy']:10.2f} {r['minutes']:5.1f}  curve " + " ".join(f"{s}:{v:.3f}" for s, v in r["val_loss_curve"]))
    print(f"chosen (lowest mean validation loss): learning rate {best_lr:g}, new parts x{best_scale:g}")
    print(json.dumps({"chosen": chosen}))
    return 0


def key(lr: float, scale: float) -> str:
    return f"lr={lr:g},scale={scale:g}"


if __name__ == "__main__":
    sys.exit(main())
