"""`GenRecTrainer`: Trainer with per-component loss logging and evaluation by full-catalogue ranking."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..evaluation.metrics import PAD, pad_lists, ranking_metrics
from ..generation.length_order import length_order
from ..generation.ranking import rank_batch
from ..io_utils import atomic_path
from ..models.processing_utils import EvalCollator
from ..recipes.training_arguments import GenRecTrainingArguments
from ..output_folders import OwnCheckpointsMixin
from ..trainer_utils import LossComponentsMixin, PrecisionSwitchingTrainer


def selection_sample(dataset: Dataset, size: int, seed: int) -> Dataset:
    """A fixed random ``size`` rows (in split order): the first rows of a split are not typical of it."""
    if size >= len(dataset):
        return dataset
    rows = np.random.default_rng(seed).choice(len(dataset), size=size, replace=False)
    return dataset.select(np.sort(rows).tolist())


class GenRecTrainer(OwnCheckpointsMixin, LossComponentsMixin, PrecisionSwitchingTrainer):
    """Trains any hf_genrec model; evaluates by ranking the whole catalogue for every user.

    ``processor`` is the model family's processor (it is also the ``processing_class`` that
    ``save_model`` saves); ``eval_collator`` (default ``EvalCollator(processor)``) turns rows
    ``{user_id, history, targets, exclude}`` into the model's inputs plus those fields.  Ranking is
    :func:`~hf_genrec.generation.ranking.rank_batch`: exact constrained beam search for generative
    models, exact scores of every item for SASRec.  Metrics are Recall@K / NDCG@K for
    ``args.metric_ks`` and ``invalid_rate`` (returned IDs that name no item: 0 by construction).
    Checkpoint rotation deletes only this run's checkpoints (``run_marker=``, see
    :class:`~hf_genrec.output_folders.OwnCheckpointsMixin`).
    """

    loss_is_scaled_for_ga = False  # models return a per-batch mean (see transformers5.md)

    def __init__(
        self,
        *args: Any,
        processor: Any,
        eval_collator: Callable[[list[dict]], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("processing_class", processor)
        super().__init__(*args, **kwargs)
        self.processor = processor
        self.item_ids = torch.as_tensor(processor.item_ids, dtype=torch.long)
        self.eval_collator = eval_collator or EvalCollator(processor)

    # ------------------------------------------------------------------ training
    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        """As Trainer's, with the lengths read once: ``dataset[column]`` is a lazy column in datasets 5,
        and the length-grouped sampler's one-element reads cost ~10 s an epoch on Beauty."""
        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, LengthGroupedSampler) and not isinstance(sampler.lengths, list):
            sampler.lengths = list(sampler.lengths)
        return sampler

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        eval_dataset: Dataset | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        args: GenRecTrainingArguments = self.args  # type: ignore[assignment]
        if eval_dataset is None and args.eval_max_users:
            dataset = selection_sample(dataset, args.eval_max_users, args.seed)
        start = time.time()
        ranked, targets, invalid, missing = self.rank(dataset, top_k=max(args.metric_ks), num_beams=args.generation_num_beams)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in ranking_metrics(ranked, targets, args.metric_ks).items()}
        metrics[f"{metric_key_prefix}_invalid_rate"] = invalid
        metrics[f"{metric_key_prefix}_missing_rate"] = missing
        metrics[f"{metric_key_prefix}_users"] = int(ranked.shape[0])
        metrics[f"{metric_key_prefix}_processes"] = self.accelerator.num_processes
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 2)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    @torch.no_grad()
    def rank(self, dataset: Dataset, top_k: int, num_beams: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        """Top-``top_k`` item ids per row (gathered across processes), targets, invalid and missing rates.

        *invalid*: returned IDs that name no catalogue item (the constraint makes it 0);
        *missing*: list positions left empty because excluded items used up the beams.
        """
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        inverse = None
        if "history" in dataset.column_names:
            order, inverse = length_order([len(h) for h in dataset["history"]])
            dataset = dataset.select(order)
        loader = self.accelerator.prepare(
            torch.utils.data.DataLoader(dataset, batch_size=self.args.per_device_eval_batch_size, collate_fn=self.eval_collator)
        )
        target_width = max(len(t) for t in dataset["targets"])
        item_ids = self.item_ids.to(self.accelerator.device)
        all_ranked, all_targets = [], []
        local_rows = invalid_rows = 0
        for batch in loader:
            local_rows += len(batch["targets"])
            targets = pad_lists(batch.pop("targets"), width=target_width).to(item_ids.device)
            exclude = batch.pop("exclude", None)
            rows, _ = rank_batch(model, self.processor, batch, top_k=top_k, num_beams=num_beams, exclude=exclude)
            invalid_rows = invalid_rows + (rows >= len(item_ids)).sum()  # stays on the device
            ranked = torch.where(rows >= 0, item_ids[rows.clamp(min=0, max=len(item_ids) - 1)], torch.full_like(rows, PAD))
            ranked, targets = self.accelerator.gather_for_metrics((ranked, targets))
            all_ranked.append(ranked.cpu())
            all_targets.append(targets.cpu())
        counts = self.accelerator.gather(torch.tensor([local_rows], device=self.accelerator.device))
        self.rows_per_process = counts.cpu().tolist()  # rows each process decoded (before de-duplication)
        ranked = torch.cat(all_ranked)
        invalid = self.accelerator.gather(torch.as_tensor(invalid_rows, device=self.accelerator.device).reshape(1)).sum()
        invalid_rate = float(invalid) / max(ranked.numel(), 1)
        missing_rate = float((ranked == PAD).sum()) / max(ranked.numel(), 1)
        targets = torch.cat(all_targets)
        if inverse is not None:  # back to the dataset's order
            ranked, targets = ranked[inverse], targets[inverse]
        return ranked, targets, invalid_rate, missing_rate

    # ------------------------------------------------------------------ the Hub
    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """`push_to_hub` publishes hf_genrec's card (model-index from eval_results.json, the recipe), not the generic one."""
        if self.is_world_process_zero():
            from ..hub import save_model_card

            save_model_card(self.args.output_dir)

    # ------------------------------------------------------------------ pictures
    def plot_loss_curves(self, path: str) -> None:
        """One curve per logged loss term against the global step."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = sorted({k for entry in self.loss_history for k in entry if k != "step"})
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in names:
            points = [(e["step"], e[name]) for e in self.loss_history if name in e and math.isfinite(e[name])]
            if points:
                ax.plot(*zip(*points), label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
