"""A method's own module for the shared training loop (methods/base.py TrainingParts): its forward
returns {"loss": ...}, and its checkpoints keep each tied weight once."""
from __future__ import annotations

from torch import nn


class OwnModule(nn.Module):
    """Subclasses register their students as submodules, then call `ready(config)`."""

    def ready(self, config) -> None:
        self.config = config  # what the Trainer reads of "the model"
        full = super().state_dict()
        # The Trainer re-ties instead of warning when exactly these keys are missing from a checkpoint.
        self._keys_to_ignore_on_save = [k for k in full if k not in self._unique(full)]

    @staticmethod
    def _unique(full: dict) -> dict:
        seen, out = set(), type(full)()
        for k, v in full.items():
            ident = (v.data_ptr(), tuple(v.shape))
            if ident not in seen:
                seen.add(ident)
                out[k] = v
        return out

    def state_dict(self, *args, **kwargs):
        """Tied weights (an output embedding shared with the input one) once: safetensors refuses
        tensors that share memory, and loading fills the tied copy from the kept one."""
        return self._unique(super().state_dict(*args, **kwargs))

    def students(self) -> list[nn.Module]:
        raise NotImplementedError

    def tie_weights(self):
        for m in self.students():
            m.tie_weights()
