"""The base of every config section: strict (an unknown key is an error) and able to say which of
its settings a trained checkpoint depends on. Low-level on purpose: the task sources and teacher
backends declare their options with it, below the config that composes them."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Marks a setting a trained checkpoint does not depend on (how fast, how often, where logs go): a
# rerun that changes it resumes the checkpoints instead of refusing them (OUT/METHOD/train_fingerprint.json).
KEEPS_WEIGHTS = {"keeps_weights": True}


def Setting(default: Any = ..., **kwargs: Any) -> Any:  # noqa: N802  (used like pydantic's Field)
    """A config field marked KEEPS_WEIGHTS."""
    return Field(default, json_schema_extra=KEEPS_WEIGHTS, **kwargs)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def fingerprint(self) -> dict:
        """The section's settings a trained checkpoint depends on: every field not marked KEEPS_WEIGHTS."""
        keep = {n for n, f in type(self).model_fields.items()
                if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("keeps_weights")}
        return self.model_dump(mode="json", exclude=keep)


class PlugIn(Strict):
    """The options of a plug-in chosen by a tag field (a task source, a teacher backend): `needs`
    names the options it cannot do without, refused by name when unset."""

    section: ClassVar[str]  # the config section: "task", "teacher"
    tag: ClassVar[str]  # the field that names the plug-in: "source", "backend"
    needs: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _needs(self):
        for need in self.needs:
            if not getattr(self, need):
                raise ValueError(f"{self.section}.{self.tag} {getattr(self, self.tag)!r} needs `{self.section}.{need}`")
        return self
