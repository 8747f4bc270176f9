"""The perception module of adaptive thinking (Chen et al. 2024): a learned soft prompt plus a
small head over the frozen student's representation of the question. It predicts which mode
answers the question correctly, `pre` (think, then answer) or `post` (answer, then think).

Our design (the paper's code is unpublished): the soft prompt (`n_virtual_tokens` vectors,
initialised from random rows of the student's embedding table, as in prompt tuning) is
prepended to the question's embeddings; the student's backbone (decoder stack, or the encoder of
an encoder-decoder) runs frozen; the hidden states are mean-pooled over prompt and question and
a small MLP maps them to two logits. Only the soft prompt and the head are trained, so the
module is a few thousand parameters stored beside the student (`perception/` in the model
folder: safetensors weights + config.json) and the student itself is untouched.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import ModelError
from ..io import write_json

log = logging.getLogger(__name__)

LABELS = ("pre", "post")  # class index -> mode
DIRNAME = "perception"
WEIGHTS = "perception.safetensors"


class Perception(nn.Module):
    def __init__(self, hidden_size: int, n_virtual_tokens: int = 8, head_hidden: int = 64):
        super().__init__()
        self.soft_prompt = nn.Parameter(torch.zeros(n_virtual_tokens, hidden_size))
        self.head = (nn.Sequential(nn.Linear(hidden_size, head_hidden), nn.Tanh(), nn.Linear(head_hidden, 2))
                     if head_hidden else nn.Linear(hidden_size, 2))
        self.config = {"hidden_size": hidden_size, "n_virtual_tokens": n_virtual_tokens, "head_hidden": head_hidden,
                       "labels": list(LABELS)}
        self.info: dict = {}  # what training recorded (labels, fit, the router check); saved in config.json

    @classmethod
    def for_student(cls, student, n_virtual_tokens: int = 8, head_hidden: int = 64, seed: int = 0) -> "Perception":
        emb = student.get_input_embeddings().weight
        mod = cls(emb.shape[1], n_virtual_tokens, head_hidden)
        g = torch.Generator().manual_seed(seed)
        rows = torch.randint(emb.shape[0], (n_virtual_tokens,), generator=g)
        with torch.no_grad():
            mod.soft_prompt.copy_(emb.detach().cpu()[rows].float())
            torch.manual_seed(seed)
            for layer in mod.head.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        return mod.to(emb.device)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, student, seq2seq: bool, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = student.get_input_embeddings()(input_ids)
        b, n = emb.shape[0], self.soft_prompt.shape[0]
        x = torch.cat([self.soft_prompt.to(emb.dtype).unsqueeze(0).expand(b, -1, -1), emb], dim=1)
        mask = torch.cat([attention_mask.new_ones(b, n), attention_mask], dim=1)
        if seq2seq:
            h = student.get_encoder()(inputs_embeds=x, attention_mask=mask).last_hidden_state
        else:
            h = student.base_model(inputs_embeds=x, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return self.head(pooled.float())

    def _encode(self, tok, questions: list[str], seq2seq: bool, device) -> dict:
        # Right padding: the decoder's position ids count from the first position, so padding on
        # the right keeps each question's positions the same whatever its batch.
        tok.padding_side = "right"
        limit = max(8, int(getattr(tok, "model_max_length", 2048) or 2048) - self.soft_prompt.shape[0])
        limit = min(limit, 4096)
        return tok(questions, return_tensors="pt", padding=True, truncation=True, max_length=limit,
                   add_special_tokens=seq2seq).to(device)

    # -- training --------------------------------------------------------------------------------
    def fit(self, student, tok, seq2seq: bool, questions: list[str], labels: list[int], *, steps: int, lr: float,
            batch_size: int, seed: int = 0, progress: Callable[[int], None] | None = None) -> dict:
        """Train the soft prompt and head with cross-entropy; the student stays frozen."""
        device = next(student.parameters()).device
        was_training = student.training
        flags = [p.requires_grad for p in student.parameters()]
        student.eval()  # no dropout: the representation the module learns from is the one it sees at inference
        for p in student.parameters():
            p.requires_grad_(False)
        self.train()
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=0.0)
        y_all = torch.tensor(labels, dtype=torch.long)
        g = torch.Generator().manual_seed(seed)
        order: list[int] = []
        losses = []
        try:
            for _ in range(steps):
                if len(order) < batch_size:
                    order += torch.randperm(len(questions), generator=g).tolist()
                idx, order = order[:batch_size], order[batch_size:]
                enc = self._encode(tok, [questions[i] for i in idx], seq2seq, device)
                logits = self(student, seq2seq, enc["input_ids"], enc["attention_mask"])
                loss = nn.functional.cross_entropy(logits, y_all[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if not math.isfinite(losses[-1]):
                    raise ModelError(f"perception module training diverged (loss {losses[-1]}); lower its learning rate")
                if progress:
                    progress(1)
        finally:
            for p, f in zip(student.parameters(), flags):
                p.requires_grad_(f)
            student.train(was_training)
            self.eval()
        p_post = self.p_post(student, tok, seq2seq, questions, batch_size=max(64, batch_size))
        pred = [int(p >= 0.5) for p in p_post]
        tail = losses[-max(1, len(losses) // 10):]
        return {"train_accuracy": round(100 * sum(a == b for a, b in zip(pred, labels)) / len(labels), 2),
                "final_loss": round(sum(tail) / len(tail), 4), "steps": steps}

    # -- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def p_post(self, student, tok, seq2seq: bool, questions: list[str], batch_size: int = 128) -> list[float]:
        """P(post is the right mode) per question."""
        self.eval()
        device = next(student.parameters()).device
        out: list[float] = []
        for s in range(0, len(questions), batch_size):
            enc = self._encode(tok, questions[s:s + batch_size], seq2seq, device)
            logits = self(student, seq2seq, enc["input_ids"], enc["attention_mask"])
            out += torch.softmax(logits, -1)[:, LABELS.index("post")].tolist()
        return out

    # -- files -----------------------------------------------------------------------------------
    def save(self, directory: str | Path, info: dict | None = None) -> Path:
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(d / WEIGHTS))
        write_json(d / "config.json", {**self.config, **({"training": info} if info else {})})
        return d

    @classmethod
    def load(cls, directory: str | Path, device=None) -> "Perception":
        from safetensors.torch import load_file

        d = Path(directory)
        if not (d / WEIGHTS).exists() or not (d / "config.json").exists():
            raise ModelError(f"{d}: no perception module here ({WEIGHTS} + config.json); train the student with "
                             f"method `adaptive`, or force a mode with method_options.adaptive.mode=pre|post")
        try:
            cfg = json.loads((d / "config.json").read_text())
            mod = cls(int(cfg["hidden_size"]), int(cfg["n_virtual_tokens"]), int(cfg["head_hidden"]))
            mod.load_state_dict(load_file(str(d / WEIGHTS)))
            mod.info = cfg.get("training") or {}
        except (KeyError, ValueError, RuntimeError) as e:
            raise ModelError(f"{d}: cannot load the perception module: {e}") from None
        return mod.to(device) if device is not None else mod
