"""Loading and batched generation for Hugging Face models, shared by the local teacher and the
student evaluator (so both use the same code users rely on: `from_pretrained` by hub id or path).

Weights load with safetensors only and `trust_remote_code` stays off unless asked for.
"""
from __future__ import annotations

import logging
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from transformers import StoppingCriteria

from .errors import ModelError
from .hub import model_source_problem

# EncoderDecoderModel warns on every forward with labels (training, option scoring) that models
# trained before transformers 4.12 computed the loss differently; it concerns none of ours.
warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)

log = logging.getLogger(__name__)


def is_masked_architecture(architecture: str) -> bool:
    """A masked LM ("BertForMaskedLM") fills [MASK] slots; it cannot generate."""
    return architecture.endswith("ForMaskedLM")


def saved_architecture(name_or_path: str) -> str:
    """The architecture a local model folder was saved as ("BertForMaskedLM"), or "" if unknown."""
    import json

    cfg = Path(name_or_path) / "config.json"
    try:
        return (json.loads(cfg.read_text()).get("architectures") or [""])[0] if cfg.is_file() else ""
    except (OSError, ValueError):
        return ""


def load_model(name_or_path: str, trust_remote_code: bool = False, dtype: str = "auto", masked: bool | None = False):
    """(model, tokenizer, is_seq2seq) from a hub id, a local directory or `pretrained:NAME` of a
    language model installed with a package (converted once into a folder, packaged.py). A masked LM
    loads only when asked for (`masked=True`; it cannot generate) or when `masked=None` (whatever it is)."""
    from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM,
                              AutoTokenizer)

    if name_or_path.startswith("pretrained:"):
        from .packaged import packaged_lm

        name_or_path = str(packaged_lm(name_or_path.split(":", 1)[1]).folder())

    problem = model_source_problem(name_or_path)  # fail at once, not after the hub client's retries
    if problem:
        raise ModelError(f"cannot load model: {problem}")
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as e:
        raise ModelError(f"cannot load model config from {name_or_path!r}: {e}") from None
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    is_mlm = is_masked_architecture((getattr(config, "architectures", None) or [""])[0])
    if masked is None:
        masked = is_mlm
    if is_mlm != masked:
        raise ModelError(f"{name_or_path} is {'a masked LM: it fills [MASK] slots and cannot generate' if is_mlm else 'not a masked LM'}")
    cls = AutoModelForMaskedLM if masked else AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    kwargs = {"trust_remote_code": trust_remote_code, "use_safetensors": True}
    if dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = cls.from_pretrained(name_or_path, **kwargs)
    except Exception as e:
        raise ModelError(f"cannot load model/tokenizer from {name_or_path!r}: {e}") from None
    prepare_tokenizer(tok, model, str(name_or_path))
    return model, tok, seq2seq


def prepare_tokenizer(tok, model=None, name: str = "the student") -> None:
    """Every student needs an end-of-sequence token (training appends it to targets; generation
    stops at it) and a pad token. A tokenizer without EOS (BERT's) takes the model's generation
    EOS, else its SEP token; with neither, this fails here, before any training."""
    if tok.eos_token is None:
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        gen_eos = gen_eos[0] if isinstance(gen_eos, list) and gen_eos else gen_eos
        if gen_eos is not None:
            tok.eos_token = tok.convert_ids_to_tokens(int(gen_eos))
        elif tok.sep_token is not None:
            tok.eos_token = tok.sep_token
        else:
            raise ModelError(f"{name}: the tokenizer has no end-of-sequence token, no SEP token, and the model's "
                             f"generation config names none; add one (tokenizer.add_special_tokens({{'eos_token': "
                             f"...}}), then save_pretrained) before training")
    if tok.pad_token is None:  # decoder-only batches pad on the left, so EOS can double as padding
        tok.pad_token = tok.eos_token
    if model is None:
        return
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            if getattr(cfg, "pad_token_id", None) is None:
                cfg.pad_token_id = tok.pad_token_id
            if getattr(cfg, "eos_token_id", None) is None:
                cfg.eos_token_id = tok.eos_token_id
    if getattr(model.config, "is_encoder_decoder", False) and getattr(model.config, "decoder_start_token_id", None) is None:
        start = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        if start is None:
            raise ModelError(f"{name}: an encoder-decoder needs `decoder_start_token_id` in its config, and the "
                             f"tokenizer has no CLS or BOS token to use")
        model.config.decoder_start_token_id = start
        model.generation_config.decoder_start_token_id = start


def max_positions(model) -> int | None:
    """The longest sequence the model's position embeddings take (None: no fixed limit, e.g. T5)."""
    cfgs = [model.config, getattr(model.config, "encoder", None), getattr(model.config, "decoder", None)]
    limits = [getattr(c, "max_position_embeddings", None) for c in cfgs if c is not None]
    limits = [n for n in limits if isinstance(n, int) and n > 0]
    return min(limits) if limits else None


def prompt_lengths(tok, prompts: Sequence[str], seq2seq: bool) -> list[int]:
    """Each prompt's length in tokens as `generate` feeds it (a seq2seq prompt carries its special
    tokens), for checks against `input_limit`."""
    return [len(tok(p, add_special_tokens=seq2seq, verbose=False)["input_ids"]) for p in prompts]


def input_limit(model, tok) -> int | None:
    """The longest prompt the student can read: its tokenizer's limit or its position embeddings'."""
    limits = [n for n in (getattr(tok, "model_max_length", None), max_positions(model))
              if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits) if limits else None


# Text a WordPiece tokenizer spaces out on decoding ("-->" -> "- - >", "0.5" -> "0. 5", "-3" -> "- 3"),
# put back together so that separators, stop strings and numbers read as they were trained.
# Only "." and "/" are joined: "1, 2" may be a list, and the decoded text cannot tell.
_SPACED_NUMBER = re.compile(r"(?<=\d)\s*([./])\s*(?=\d)")
_SPACED_SIGN = re.compile(r"(^|[\s(=])([-−])\s+(?=\d)")


def respeller(tok, markers: Sequence[str]) -> Callable[[str], str]:
    """A function that undoes the tokenizer's respelling of `markers` (and of numbers, for
    tokenizers that space them), or the identity for tokenizers that round-trip text."""
    def spelled(s: str) -> str:
        return tok.decode(tok(s, add_special_tokens=False)["input_ids"], skip_special_tokens=True)

    pairs = [(sp, m) for m in dict.fromkeys(markers) if m and (sp := spelled(m)) != m and sp.strip()]
    numbers = spelled("0.5 -3") != "0.5 -3"
    if not pairs and not numbers:
        return lambda text: text

    def fix(text: str) -> str:
        for sp, m in pairs:
            text = text.replace(sp, m)
        if numbers:
            text = _SPACED_SIGN.sub(r"\1\2", _SPACED_NUMBER.sub(r"\1", text))
        return text

    return fix


TOO_LONG = "too_long"  # finish_reason of a prompt longer than the student's input limit: never generated


@dataclass
class Generated:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    duration_s: float


class StopOnText(StoppingCriteria):
    """A stopping criterion inside the decoding loop: a row ends as soon as its generated text
    contains a stop string (later positions are padding), so no compute is spent past it.
    Unlike transformers' `stop_strings`, only generated tokens are looked at, so a prompt that
    ends with part of a stop string cannot end generation early."""

    def __init__(self, tok, stop: Sequence[str], start: int, fix: Callable[[str], str] = lambda t: t):
        self.tok, self.stop, self.start, self.fix = tok, [s for s in stop if s], start, fix
        # Enough trailing tokens to hold any stop string, even at one byte per token.
        self.window = max(len(s.encode()) for s in self.stop) + 1

    def __call__(self, input_ids, scores=None, **kw) -> torch.BoolTensor:
        new = input_ids[:, self.start:]
        tail = new[:, -self.window:].tolist()
        texts = [self.fix(t) for t in self.tok.batch_decode(tail, skip_special_tokens=True)]
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


def _truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@torch.no_grad()
def generate(
    model, tok, prompts: Sequence[str], *, seq2seq: bool, max_new_tokens: int = 128, temperature: float = 0.0,
    seed: int | None = 0, batch_size: int = 64, stop: Sequence[str] = (), max_input_tokens: int | None = None,
    markers: Sequence[str] = (), progress: Callable[[int], None] | None = None, too_long: str = "raise",
) -> list[Generated]:
    """Greedy (temperature 0) or sampled generation with the KV cache, batched by prompt length.
    `stop` strings and `markers` (e.g. a separator the caller parses) read back as written even
    where the tokenizer spaces them out on decoding. A prompt over the input limit raises, or with
    `too_long="mark"` is not generated and comes back empty with finish_reason TOO_LONG."""
    if too_long not in ("raise", "mark"):
        raise ValueError(f"too_long must be 'raise' or 'mark', not {too_long!r}")
    model.eval()
    device = next(model.parameters()).device
    tok.padding_side = "right" if seq2seq else "left"
    lengths = prompt_lengths(tok, prompts, seq2seq)
    limit = max_input_tokens or getattr(tok, "model_max_length", None)
    over = {i for i, n in enumerate(lengths) if limit and limit < 1e9 and n > limit}
    if over and too_long == "raise":
        worst = max(over, key=lengths.__getitem__)
        raise ModelError(
            f"prompt {worst} has {lengths[worst]} tokens, over the model's input limit of {limit}: "
            f"shorten it or raise the limit ({prompts[worst][:60]!r}...)"
        )
    fix = respeller(tok, [*stop, *markers])
    order = sorted((i for i in range(len(prompts)) if i not in over), key=lengths.__getitem__)
    out: list[Generated | None] = [Generated("", TOO_LONG, lengths[i], 0, 0.0) if i in over else None
                                   for i in range(len(prompts))]
    eos = tok.eos_token_id
    if over and progress:
        progress(len(over))
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=seq2seq).to(device)
        kw = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=eos, use_cache=True)
        if stop:
            from transformers import StoppingCriteriaList

            start = 1 if seq2seq else enc["input_ids"].shape[1]
            kw["stopping_criteria"] = StoppingCriteriaList([StopOnText(tok, stop, start, fix)])
        if temperature > 0:
            if seed is not None:
                torch.manual_seed(seed + s)
            kw.update(do_sample=True, temperature=temperature, top_p=1.0)
        else:
            kw.update(do_sample=False)
        t0 = time.perf_counter()
        gen = model.generate(**enc, **kw)
        dt = (time.perf_counter() - t0) / len(idx)
        new = gen if seq2seq else gen[:, enc["input_ids"].shape[1]:]
        for row, i in enumerate(idx):
            ids = new[row].tolist()
            if seq2seq and ids and ids[0] == model.config.decoder_start_token_id:
                ids = ids[1:]
            hit_eos = eos in ids
            if hit_eos:
                ids = ids[: ids.index(eos)]
            ids = [t for t in ids if t != tok.pad_token_id] if tok.pad_token_id != eos else ids
            text = fix(tok.decode(ids, skip_special_tokens=True))
            text, hit_stop = _truncate_at_stop(text, stop)  # the stop string itself is not part of the text
            finish = "stop" if (hit_eos or hit_stop) else "length"
            out[i] = Generated(text, finish, lengths[i], len(ids), dt)
        if progress:
            progress(len(idx))
    return out  # type: ignore[return-value]


def continuation_logprob(model, tok, seq2seq: bool, sources: Sequence[str], prefixes: Sequence[str],
                         continuations: Sequence[str], batch_size: int = 32) -> list[float]:
    """Mean log-probability per token of each `continuation` after `source` + `prefix` (the part the
    student wrote itself), as the student would write it: decoder-only students read
    `source + prefix + continuation`; encoder-decoders read `source` and write `prefix +
    continuation`. Used to score answer options.

    Decoder-only students read each distinct `source + prefix` once and score all its
    continuations from that cache: the rows of one question's options share it, and reading it
    again per option made scoring cost as much as the options, up to 10x the generation before it."""
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    for s in range(0, len(sources), batch_size):
        rows = []
        for src, pre, cont in zip(sources[s:s + batch_size], prefixes[s:s + batch_size], continuations[s:s + batch_size]):
            src_ids = tok(src, add_special_tokens=seq2seq)["input_ids"]
            pre_ids = tok(pre, add_special_tokens=False)["input_ids"] if pre else []
            cont_ids = tok(cont, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
            rows.append((src_ids, pre_ids, cont_ids))
        with torch.no_grad():
            if seq2seq:
                enc = tok.pad({"input_ids": [r[0] for r in rows]}, return_tensors="pt").to(device)
                tgt = [r[1] + r[2] for r in rows]
                n = max(len(t) for t in tgt)
                labels = torch.full((len(rows), n), -100, dtype=torch.long)
                for i, t in enumerate(tgt):
                    labels[i, :len(t)] = torch.tensor(t)
                logits = model(**enc, labels=labels.to(device)).logits
                logp = torch.log_softmax(logits.float(), -1)
                for i, (_, pre, cont) in enumerate(rows):
                    pos = torch.arange(len(pre), len(pre) + len(cont), device=device)
                    out.append(float(logp[i, pos, torch.tensor(cont, device=device)].mean()))
            else:
                out.extend(_causal_logprobs(model, rows, device))
    return out


def _causal_logprobs(model, rows, device) -> list[float]:
    """Mean log-probability of each row's continuation (rows of (source, prefix, continuation)
    token ids): one forward over each distinct context, its cache repeated for that context's
    continuations, right-padded (a real token never attends to the padding after it)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    cache_arg = "cache" if "cache" in params else "past_key_values"  # transformers 5.x renamed it
    groups: dict[tuple, list[int]] = {}
    for i, (src, pre, _) in enumerate(rows):
        groups.setdefault(tuple(src + pre), []).append(i)
    out = [0.0] * len(rows)
    for ctx, idx in groups.items():
        if not ctx:
            raise ValueError("continuation_logprob: an empty source and prefix leave nothing to condition on")
        conts = [rows[i][2] for i in idx]
        first = model(input_ids=torch.tensor([ctx], device=device), use_cache=True, **keep)
        lp0 = torch.log_softmax(first.logits[0, -1].float(), -1)
        rest = None
        n = max(len(c) for c in conts)
        if n > 1:
            cache = getattr(first, "cache", None) or first.past_key_values
            cache.batch_repeat_interleave(len(conts))
            ids = torch.zeros((len(conts), n - 1), dtype=torch.long)
            for j, c in enumerate(conts):
                ids[j, :len(c) - 1] = torch.tensor(c[:-1])
            rest = torch.log_softmax(model(input_ids=ids.to(device), **{cache_arg: cache}).logits.float(), -1)
        for j, (i, c) in enumerate(zip(idx, conts)):
            total = lp0[c[0]]  # token t of the continuation is predicted after token t - 1
            if len(c) > 1:
                total = total + rest[j, torch.arange(len(c) - 1, device=device), torch.tensor(c[1:], device=device)].sum()
            out[i] = float(total / len(c))
    return out
