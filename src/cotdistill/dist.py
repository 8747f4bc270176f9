"""Several training processes (`accelerate launch --num_processes N -m cotdistill.cli run ...`).

Every process trains (transformers' Trainer shards each batch across them: DDP, gloo on CPU and
NCCL on GPUs, or FSDP/DeepSpeed from the accelerate config); the main process alone prepares the
data, calls the teacher, saves students, evaluates and reports, and the others wait for it. With
one process (no WORLD_SIZE in the environment) none of this touches torch.distributed.
"""
from __future__ import annotations

import contextlib
import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _state():
    import torch
    from accelerate import PartialState

    # Without GPUs accelerate only runs distributed (gloo) when told it is on the CPU, as the Trainer
    # tells it (use_cpu); the state is shared, so this must agree with the Trainer's.
    return PartialState(cpu=not torch.cuda.is_available())


def barrier() -> None:
    if world_size() > 1:
        _state().wait_for_everyone()


@contextlib.contextmanager
def main_first():
    """The main process runs the block first; the others run it after (reading what it wrote)."""
    if world_size() == 1:
        yield
        return
    with _state().main_process_first():
        yield
