"""Methods: one module per method, registered by name."""
from __future__ import annotations

from ..registry import Registry
from .adaptive import AdaptiveThinking
from .as_es import ASES, ASESDual
from .base import Method, Output, Pair, Parsed, TrainingParts, validate_options
from .cot_tuning import CoTTuning, CoTTuningDirect
from .cott import CoTT
from .direct import Direct
from .finetune_cls import FinetuneCls
from .ft_cot import FineTuneCoT
from .kd import KnowledgeDistillation
from .post import PostThinking
from .prompt_tuning import PromptTuning
from .step_by_step import DistillingStepByStep

METHODS: Registry[type[Method]] = Registry("method")
for _cls in (Direct, FineTuneCoT, KnowledgeDistillation, PostThinking, AdaptiveThinking, DistillingStepByStep, ASES,
             ASESDual, CoTTuning, CoTTuningDirect,
             # masked-LM methods: they classify with a BERT-style student instead of generating
             CoTT, PromptTuning, FinetuneCls):
    METHODS.add(_cls)


def get_method(name: str, options: dict | None = None) -> Method:
    return METHODS.get(name)(options)


def needs_rationales(methods: list[str]) -> bool:
    """Whether any of these methods learns from teacher rationales (so the run asks the teacher)."""
    return any(METHODS.get(m).uses_rationales for m in methods)


__all__ = ["METHODS", "Method", "Output", "Pair", "Parsed", "TrainingParts", "get_method", "needs_rationales",
           "validate_options"]
