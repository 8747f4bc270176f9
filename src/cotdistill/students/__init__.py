"""Students: loading (hub id, local path, from-scratch preset or offline pretrained model),
training and generation."""
from __future__ import annotations

from .. import hf
from ..errors import ConfigError
from ..hub import model_source_problem
from .presets import PRESETS, build_preset
from .pretrained import PRETRAINED, build_pretrained


def load_student(model: str, trust_remote_code: bool = False, seed: int = 0, layers: int | None = None,
                 tokenizer=None):
    """(model, tokenizer, is_seq2seq). `preset:NAME` builds a from-scratch student (with
    `tokenizer`, e.g. a BPE trained on the run's text, instead of the byte-level one);
    `pretrained:NAME` one warm-started from weights installed with a package."""
    if problem := layers_problem(model, layers):
        raise ConfigError(problem)
    if tokenizer is not None and not model.startswith("preset:"):
        raise ConfigError(f"`student.tokenizer: bpe` trains a tokenizer for from-scratch presets; {model!r} "
                          "brings its own")
    if model.startswith("preset:"):
        return build_preset(model.split(":", 1)[1], seed=seed, tok=tokenizer)
    if model.startswith("pretrained:"):
        return build_pretrained(model.split(":", 1)[1], layers=layers, seed=seed)
    # A masked LM loads as one; the preflight (checks.py) keeps it away from generating methods.
    return hf.load_model(model, trust_remote_code=trust_remote_code, masked=None)


def layers_problem(model: str, layers: int | None) -> str | None:
    """`student.layers` picks layers of a packaged pretrained student, and of nothing else."""
    if layers is not None and not model.startswith("pretrained:"):
        return f"`student.layers`: picks layers of a `pretrained:` student; {model!r} is not one"
    return None


def load_causal_lm(name: str, field: str):
    """(model, tokenizer) of a reference causal LM (in eval mode), e.g. for the entropy rule of AS-ES
    segment labelling; `field` names the setting in errors."""
    model, tok, seq2seq = load_student(name)
    if seq2seq:
        raise ConfigError(f"`{field}`: {name} is an encoder-decoder; the entropy rule needs a causal LM")
    model.eval()
    return model, tok


def model_problems(name: str, field: str, teacher: bool = False) -> list[str]:
    """Why the model `name` named by the config field `field` cannot be used (as a teacher, with
    `teacher`): an unknown preset or packaged model, a package not installed, a folder or hub id
    that cannot load."""
    if name.startswith("preset:"):
        from ..registry import unknown_name

        preset = name.split(":", 1)[1]
        return [] if preset in PRESETS else [f"`{field}`: {unknown_name('student preset', preset, PRESETS)}"]
    if name.startswith("pretrained:"):
        from ..registry import unknown_name
        from .pretrained import is_language_model, pretrained_problem

        which = name.split(":", 1)[1]
        if which not in PRETRAINED:
            return [f"`{field}`: {unknown_name('pretrained student', which, PRETRAINED)}"]
        if teacher and not is_language_model(which):
            return [f"`{field}`: pretrained:{which} is a warm start built for training, not a language model "
                    f"that can teach; use {', '.join(f'pretrained:{n}' for n in PRETRAINED if is_language_model(n))}, "
                    f"a hub id or a model folder"]
        problem = pretrained_problem(which)
        return [f"`{field}`: {problem}"] if problem else []
    problem = model_source_problem(name)
    return [f"`{field}`: {problem}"] if problem else []


def load_tokenizer(model: str):
    """The tokenizer a student or teacher named `model` uses, without loading its weights."""
    if model.startswith("preset:"):
        from .presets import byte_tokenizer

        return byte_tokenizer(masked=PRESETS.get(model.split(":", 1)[1], ("",))[0] == "bert")
    from transformers import AutoTokenizer

    if model.startswith("pretrained:"):
        from ..packaged import PACKAGED_LMS
        from .pretrained import minilm_dir

        which = model.split(":", 1)[1]
        return AutoTokenizer.from_pretrained(PACKAGED_LMS[which].folder() if which in PACKAGED_LMS else minilm_dir())
    return AutoTokenizer.from_pretrained(model)


def same_vocabulary(a, b, name_a: str, name_b: str) -> str | None:
    """Why two tokenizers cannot share next-token distributions (token ids mean different things), or None."""
    va, vb = a.get_vocab(), b.get_vocab()
    if va == vb:
        return None
    common = sum(1 for t, i in va.items() if vb.get(t) == i)
    return (f"{name_b}'s tokenizer differs from {name_a}'s ({len(vb)} and {len(va)} tokens, {common} with the same "
            f"id): their distributions cannot be compared token by token; use a teacher with the student's tokenizer")


def tokenizer_problem(student: str, teacher: str) -> str | None:
    """Why `teacher` cannot distil into `student` token by token, or None (both tokenizers load)."""
    return same_vocabulary(load_tokenizer(student), load_tokenizer(teacher), f"the student {student}", teacher)


def is_masked_lm(model_name: str) -> bool:
    """A masked-LM student fills [MASK] slots; it cannot generate rationales."""
    if model_name.startswith("pretrained:"):
        return model_name.endswith("-mlm")
    if model_name.startswith("preset:"):
        return PRESETS.get(model_name.split(":", 1)[1], ("",))[0] == "bert"
    return hf.is_masked_architecture(hf.saved_architecture(model_name))


__all__ = ["PRESETS", "PRETRAINED", "build_preset", "build_pretrained", "is_masked_lm", "load_causal_lm", "load_student", "load_tokenizer", "model_problems",
           "same_vocabulary", "tokenizer_problem"]
