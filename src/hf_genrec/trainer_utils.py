"""Plumbing shared by every ``transformers.Trainer`` of the package (item encoders, RQ-VAE, recommenders).

* :class:`PrecisionSwitchingTrainer` -- several Trainers with different mixed precision in one process.
  accelerate keeps one process-wide ``AcceleratorState``; a second ``Accelerator`` asking for another
  ``mixed_precision`` raises "AcceleratorState has already been initialized".  Before a Trainer is
  built, the mixed-precision part of that state is dropped when it disagrees with the new
  arguments; the distributed part (``PartialState``: process group, ranks) is kept.
* :class:`LossComponentsMixin` -- logs each term of a multi-task loss (``outputs.loss_components``)
  as ``loss_<name>``, averaged over the steps since the last log, without a host-device sync a step.
* :class:`TimeBudgetCallback` -- stops training at a wall-clock budget, after one more evaluation and save.
* :class:`StderrLogCallback` -- training logs as log records (stderr in the CLI), since Trainer's
  printers write to stdout, which the CLI keeps for its JSON result.

This module sits just above ``errors`` / ``io_utils``: it imports nothing else of the package.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from accelerate.state import AcceleratorState
from transformers import Trainer, TrainerCallback, TrainingArguments

logger = logging.getLogger(__name__)


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


class LossComponentsMixin:
    """Trainer mixin: every entry of ``outputs.loss_components`` is logged as ``loss_<name>``.

    The sums stay on the device (detached) until a log step, so training pays no sync per step.
    ``loss_history`` keeps every logged loss entry (for plots).  Put it before the Trainer class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._component_sums: dict[str, torch.Tensor] = {}
        self._component_steps = 0
        self.loss_history: list[dict[str, float]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        components = getattr(outputs, "loss_components", None) or {}
        if model.training:
            for name, value in components.items():
                self._component_sums[name] = self._component_sums.get(name, 0) + value.detach()
            self._component_steps += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._component_steps:
            for name, total in self._component_sums.items():
                logs[f"loss_{name}"] = round(float(total) / self._component_steps, 4)
            self._component_sums, self._component_steps = {}, 0
        if "loss" in logs:
            self.loss_history.append({"step": self.state.global_step, **{k: v for k, v in logs.items() if k.startswith("loss")}})
        super().log(logs, start_time)


class TimeBudgetCallback(TrainerCallback):
    """Ends training at the first step past ``minutes`` of the training loop; that step evaluates and saves,
    so with ``load_best_model_at_end`` the best evaluated checkpoint is still the one kept."""

    def __init__(self, minutes: float) -> None:
        self.seconds = 60.0 * minutes
        self.started: float | None = None
        self.stopped_at_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is not None and time.monotonic() - self.started > self.seconds and self.stopped_at_step is None:
            self.stopped_at_step = state.global_step
            logger.warning("training stopped at step %d: the %.1f-minute budget is spent", state.global_step, self.seconds / 60)
            control.should_training_stop = True
            control.should_evaluate = True
            control.should_save = True
        return control


class StderrLogCallback(TrainerCallback):
    """Training logs as log records (stderr in the CLI) instead of Trainer's stdout printers."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            shown = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"}
            logger.info("step %d: %s", state.global_step, shown)


__all__ = [
    "LossComponentsMixin",
    "PrecisionSwitchingTrainer",
    "StderrLogCallback",
    "TimeBudgetCallback",
    "make_room_for_mixed_precision",
    "requested_mixed_precision",
]
