"""A small generic registry for plug-ins (tasks, teachers, methods).

Duplicate names are an error, and an unknown name gets a "did you mean" with the list of choices,
so a typo in a config fails before any work starts.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def unknown_name(kind: str, name: str, choices) -> ConfigError:
    """'unknown method 'ft_cott'. Did you mean 'ft_cot'? Available: ...'"""
    close = difflib.get_close_matches(name, list(choices), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Available: {', '.join(sorted(choices))}")


class Registry(Generic[T]):
    def __init__(self, kind: str, key: Callable[[T], str] = lambda obj: getattr(obj, "name")):
        self.kind = kind
        self.key = key  # the name a plug-in registers under (`add`): its `name` unless said otherwise
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, obj: T) -> T:
        """Registers a plug-in under its own name (`key`); a class decorator too."""
        return self.register(self.key(obj))(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[T]:
        """The plug-ins in the order they were registered."""
        return list(self._items.values())
