"""Methods: one module per method, registered by name."""
from __future__ import annotations

from ..registry import Registry
from .base import Method, Pair, Parsed
from .direct import Direct
from .ft_cot import FineTuneCoT

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("direct")(Direct)
METHODS.register("ft_cot")(FineTuneCoT)


def get_method(name: str) -> Method:
    return METHODS.get(name)()


__all__ = ["METHODS", "Method", "Pair", "Parsed", "get_method"]
