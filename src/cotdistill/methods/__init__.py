"""Methods: one module per method, registered by name."""
from __future__ import annotations

from ..registry import Registry
from .adaptive import AdaptiveThinking
from .as_es import ASES, ASESDual
from .base import Method, Output, Pair, Parsed, validate_options
from .cot_tuning import CoTTuning, CoTTuningDirect
from .cott import CoTT
from .direct import Direct
from .finetune_cls import FinetuneCls
from .ft_cot import FineTuneCoT
from .post import PostThinking
from .prompt_tuning import PromptTuning
from .step_by_step import DistillingStepByStep

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("direct")(Direct)
METHODS.register("ft_cot")(FineTuneCoT)
METHODS.register("post")(PostThinking)
METHODS.register("adaptive")(AdaptiveThinking)
METHODS.register("step_by_step")(DistillingStepByStep)
METHODS.register("as_es")(ASES)
METHODS.register("as_es_dual")(ASESDual)
METHODS.register("cot_tuning")(CoTTuning)
METHODS.register("cot_tuning_direct")(CoTTuningDirect)
# Masked-LM methods: they classify with a BERT-style student instead of generating.
METHODS.register("cott")(CoTT)
METHODS.register("prompt_tuning")(PromptTuning)
METHODS.register("finetune_cls")(FinetuneCls)


def get_method(name: str, options: dict | None = None) -> Method:
    return METHODS.get(name)(options)


__all__ = ["METHODS", "Method", "Output", "Pair", "Parsed", "get_method", "validate_options"]
