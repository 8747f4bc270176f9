"""Launched by test_multiprocess.py: train the tiny preset on fixed pairs; write the loss curve."""
import json
import os
import sys
from pathlib import Path

from cotdistill.config import TrainConfig
from cotdistill.methods.base import Pair
from cotdistill.students.presets import build_preset
from cotdistill.students.train import train_student

out, per_device = Path(sys.argv[1]), int(sys.argv[2])
pairs = [Pair(f"Q: what is {i} plus {i * 7}?\nA:", " Let's add. " * (1 + i % 4) + f"The answer is {8 * i}.")
         for i in range(64)]
model, tok, seq2seq = build_preset("tiny", seed=0)
cfg = TrainConfig(max_steps=8, batch_size=per_device, learning_rate=3e-3, warmup_steps=0, eval_every=8, threads=1)
res = train_student(model, tok, seq2seq, pairs, pairs[:8], cfg, out)
if int(os.environ.get("RANK", "0")) == 0:
    (out / "curve.json").write_text(json.dumps({"loss": [h["loss"] for h in res.history if "loss" in h],
                                                "val": res.best_val_loss, "world": os.environ.get("WORLD_SIZE", "1")}))
