"""Several Trainers in one process (the RQ-VAE's, then the recommender's) with different precisions.

accelerate keeps one process-wide ``AcceleratorState``; a second ``Accelerator`` asking for another
``mixed_precision`` raises "AcceleratorState has already been initialized".  Before a Trainer is
built, the mixed-precision part of that state is dropped when it disagrees with the new
arguments; the distributed part (``PartialState``: process group, ranks) is kept.
"""

from __future__ import annotations

from accelerate.state import AcceleratorState
from transformers import Trainer, TrainingArguments


def requested_mixed_precision(args: TrainingArguments) -> str:
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "no"


def make_room_for_mixed_precision(args: TrainingArguments) -> None:
    """Forget a finished Trainer's precision if ``args`` want another one."""
    current = AcceleratorState._shared_state.get("_mixed_precision")
    if current is not None and current != requested_mixed_precision(args):
        AcceleratorState._reset_state(reset_partial_state=False)


class PrecisionSwitchingTrainer(Trainer):
    """A Trainer that may follow another one with a different precision in the same process."""

    def create_accelerator_and_postprocess(self) -> None:
        make_room_for_mixed_precision(self.args)
        super().create_accelerator_and_postprocess()
