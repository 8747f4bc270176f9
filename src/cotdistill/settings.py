"""The base of every config section: strict (an unknown key is an error) and able to say which of
its settings a trained checkpoint depends on. Low-level on purpose: the task sources and teacher
backends declare their options with it, below the config that composes them."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
