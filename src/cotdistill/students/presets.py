"""From-scratch student presets and an offline byte-level tokenizer.

Sizes follow ../shared/notes/cpu-calibration.md (what learns on a 2-core CPU): `tiny` trains at
~80k tok/s, `small` (~1M params) learns multi-step arithmetic in minutes, `base` and `medium`
are for GPUs or patient users. `t5-*` are encoder-decoder twins.
"""
from __future__ import annotations

from ..errors import ConfigError

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]

# name: (architecture, hidden, layers, heads, ffn)
PRESETS: dict[str, tuple[str, int, int, int, int]] = {
    "tiny": ("llama", 64, 2, 4, 176),  # ~0.1M params
    "small": ("llama", 128, 5, 4, 352),  # ~1M
    "base": ("llama", 256, 6, 4, 704),  # ~4.8M
    "medium": ("llama", 512, 6, 8, 1376),  # ~19M
    "t5-tiny": ("t5", 64, 2, 4, 176),
    "t5-small": ("t5", 128, 4, 4, 352),
    "bert-tiny": ("bert", 64, 2, 4, 176),  # a masked LM, for the masked-LM methods' pipeline tests
}
MLM_SPECIALS = ["[CLS]", "[SEP]", "[MASK]"]


def byte_tokenizer(masked: bool = False):
    """A byte-level tokenizer with no merges: every byte is a token, so any text encodes, it needs
    no download, and `save_pretrained` / `AutoTokenizer.from_pretrained` round-trip it. `masked`
    adds BERT's [CLS], [SEP] and [MASK]."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = SPECIALS + (MLM_SPECIALS if masked else [])
    vocab = {t: i for i, t in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return _wrap(tk, masked)


def bpe_tokenizer(texts, vocab_size: int = 2000, masked: bool = False):
    """Byte-level BPE trained offline on `texts` (the run's own training text): merges learnt
    from the data shorten sequences several-fold while any text still encodes (the 256 byte
    symbols stay in the vocabulary). Same special tokens and ids as `byte_tokenizer`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = SPECIALS + (MLM_SPECIALS if masked else [])
    if vocab_size < len(specials) + 256:
        raise ConfigError(f"student.vocab_size={vocab_size}: a byte-level BPE needs at least "
                          f"{len(specials) + 256} entries (256 bytes and {len(specials)} special tokens)")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(texts, trainer)
    return _wrap(tk, masked)


def _wrap(tk, masked: bool):
    from tokenizers import decoders
    from transformers import PreTrainedTokenizerFast

    tk.decoder = decoders.ByteLevel()
    extra = dict(zip(("cls_token", "sep_token", "mask_token"), MLM_SPECIALS)) if masked else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        model_max_length=2048, **extra,
    )


def build_preset(name: str, seed: int = 0, tok=None):
    """(model, tokenizer, is_seq2seq) with random weights; `tok` (e.g. a `bpe_tokenizer`) replaces
    the byte-level one and sets the vocabulary size."""
    import torch
    from transformers import (BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM, T5Config,
                              T5ForConditionalGeneration)

    if name not in PRESETS:
        from ..registry import unknown_name

        raise unknown_name("student preset", name, PRESETS)
    arch, d, layers, heads, ffn = PRESETS[name]
    if tok is None:
        tok = byte_tokenizer(masked=arch == "bert")
    elif arch == "bert" and tok.mask_token is None:
        raise ConfigError(f"preset {name!r} is a masked LM: its tokenizer needs a [MASK] token")
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if arch == "llama":
        cfg = LlamaConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                          num_key_value_heads=heads, intermediate_size=ffn, max_position_embeddings=2048,
                          tie_word_embeddings=True, bos_token_id=tok.bos_token_id, **common)
        return LlamaForCausalLM(cfg), tok, False
    if arch == "t5":
        cfg = T5Config(d_model=d, d_kv=d // heads, d_ff=ffn, num_layers=layers, num_decoder_layers=layers,
                       num_heads=heads, decoder_start_token_id=tok.pad_token_id, feed_forward_proj="gated-gelu",
                       tie_word_embeddings=True, **common)
        return T5ForConditionalGeneration(cfg), tok, True
    if arch == "bert":
        cfg = BertConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                         max_position_embeddings=512, vocab_size=len(tok), pad_token_id=tok.pad_token_id)
        return BertForMaskedLM(cfg), tok, False
    raise ConfigError(f"preset {name!r}: unknown architecture {arch!r}")  # pragma: no cover
