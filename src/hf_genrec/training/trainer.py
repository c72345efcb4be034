"""`GenRecTrainer`: Trainer with per-component loss logging and evaluation by full-catalogue ranking."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import EvalPrediction, HubStrategy, PredictionOutput

from ..errors import ConfigError, InvalidInputError
from ..evaluation.metrics import PAD, pad_lists, ranking_metrics
from ..generation.length_order import length_order
from ..generation.ranking import rank_batch
from ..io_utils import atomic_path
from ..models.processing_utils import EvalCollator
from ..recipes.training_arguments import GenRecTrainingArguments
from ..output_folders import OwnCheckpointsMixin
from ..trainer_utils import LossComponentsMixin, PrecisionSwitchingTrainer, TimeBudgetCallback


def selection_sample(dataset: Dataset, size: int, seed: int) -> Dataset:
    """A fixed random ``size`` rows (in split order): the first rows of a split are not typical of it."""
    if size >= len(dataset):
        return dataset
    rows = np.random.default_rng(seed).choice(len(dataset), size=size, replace=False)
    return dataset.select(np.sort(rows).tolist())


class OneTableBatchSampler(torch.utils.data.Sampler):
    """Row order whose every ``batch_size`` consecutive rows share one ``tables`` value, shuffled anew each epoch.

    A table's rows are padded to whole batches by repeating some of them (fewer than ``batch_size``), so no
    batch straddles two tables.
    """

    def __init__(self, tables: Any, batch_size: int, seed: int):
        self.tables = np.asarray(list(tables))
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.padded = {int(t): -(-int((self.tables == t).sum()) // batch_size) * batch_size for t in np.unique(self.tables)}

    def __len__(self) -> int:
        return sum(self.padded.values())

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        batches = []
        for table, size in self.padded.items():
            rows = rng.permutation(np.flatnonzero(self.tables == table))
            rows = np.concatenate([rows, rng.choice(rows, size - len(rows), replace=False)])
            batches.extend(rows.reshape(-1, self.batch_size))
        for b in rng.permutation(len(batches)):
            yield from (int(row) for row in batches[b])


@dataclass
class Rankings:
    """The ranked lists of an evaluation, one row per dataset row, in the dataset's order (CPU tensors)."""

    items: torch.Tensor  # [N, K] item ids, best first; -1 where excluded items left the list short
    scores: torch.Tensor  # [N, K] log-probabilities (generative models) or scores; -inf where empty
    targets: torch.Tensor  # [N, T] target item ids, -1 padded
    invalid_rate: float
    missing_rate: float


class GenRecTrainer(OwnCheckpointsMixin, LossComponentsMixin, PrecisionSwitchingTrainer):
    """Trains any hf_genrec model; evaluates by ranking the whole catalogue for every user.

    ``processor`` is the model family's processor (it is also the ``processing_class`` that
    ``save_model`` saves); ``eval_collator`` (default ``EvalCollator(processor)``) turns rows
    ``{user_id, history, targets, exclude}`` into the model's inputs plus those fields.  Ranking is
    :func:`~hf_genrec.generation.ranking.rank_batch`: exact constrained beam search for generative
    models, exact scores of every item for SASRec.  Metrics are Recall@K / NDCG@K for
    ``args.metric_ks`` and ``invalid_rate`` (returned IDs that name no item: 0 by construction).

    Trainer conventions: ``compute_metrics`` receives the rankings as an ``EvalPrediction`` whose
    ``predictions`` are the top-K item ids ``[N, K]`` and ``label_ids`` the target item ids
    ``[N, T]`` (both -1 padded) and returns more metrics; ``predict()`` returns those two arrays
    (not logits) and the metrics; evaluation advances the progress bar (``ProgressCallback``: tqdm
    on stderr, off with ``disable_tqdm``).  There are no logits, so ``preprocess_logits_for_metrics``
    is refused.

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
        if kwargs.get("preprocess_logits_for_metrics") is not None:
            raise ConfigError(
                "GenRecTrainer ranks the catalogue instead of collecting logits: preprocess_logits_for_metrics is not "
                "used; compute_metrics receives the rankings (top-K item ids and target item ids)"
            )
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if getattr(training_args, "push_to_hub", False) and training_args.hub_strategy in (
            HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS
        ):
            raise ConfigError(
                f"hub_strategy {training_args.hub_strategy.value!r} uploads optimizer and RNG states (pickles); "
                "use 'end' or 'every_save'"
            )
        kwargs.setdefault("processing_class", processor)
        super().__init__(*args, **kwargs)
        self.processor = processor
        self.last_rankings: Rankings | None = None
        self.rows_per_process: list[int] = []
        self.item_ids = torch.as_tensor(processor.item_ids, dtype=torch.long)
        if getattr(self.args, "max_train_minutes", None):
            self.add_callback(TimeBudgetCallback(self.args.max_train_minutes))
        self.eval_collator = eval_collator or EvalCollator(processor)

    # ------------------------------------------------------------------ training
    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        """As Trainer's, with the lengths read once: ``dataset[column]`` is a lazy column in datasets 5,
        and the length-grouped sampler's one-element reads cost ~10 s an epoch on Beauty.  Rows that name an
        ``item_table`` (ColaRec's cross-fitted rows) are batched one table at a time."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if "item_table" in (getattr(dataset, "column_names", None) or ()):
            return OneTableBatchSampler(dataset["item_table"], self.args.per_device_train_batch_size, self.args.seed)
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
        """Recall@K / NDCG@K (and ``compute_metrics``' values) of ranking the whole catalogue for every row.

        Without ``eval_dataset`` the validation set is scored, on its ``eval_max_users`` sample.
        The rankings stay in ``self.last_rankings``.
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        args: GenRecTrainingArguments = self.args  # type: ignore[assignment]
        if eval_dataset is None and args.eval_max_users:
            dataset = selection_sample(dataset, args.eval_max_users, args.seed)
        metrics = self._rank_and_score(dataset, metric_key_prefix)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(
        self, test_dataset: Dataset, ignore_keys: list[str] | None = None, metric_key_prefix: str = "test"
    ) -> PredictionOutput:
        """Rankings, not logits: ``predictions`` are the top-``max(metric_ks)`` item ids per row ``[N, K]``
        (-1 where excluded items left a list short), ``label_ids`` the target item ids ``[N, T]``
        (-1 padded), ``metrics`` as :meth:`evaluate`; the scores are in ``self.last_rankings.scores``."""
        metrics = self._rank_and_score(test_dataset, metric_key_prefix)
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        rankings = self.last_rankings
        return PredictionOutput(predictions=rankings.items.numpy(), label_ids=rankings.targets.numpy(), metrics=metrics)

    def _rank_and_score(self, dataset: Dataset, prefix: str) -> dict[str, float]:
        args: GenRecTrainingArguments = self.args  # type: ignore[assignment]
        start = time.time()
        rankings = self.rank(dataset, top_k=max(args.metric_ks), num_beams=args.generation_num_beams)
        self.last_rankings = rankings
        metrics = {f"{prefix}_{k}": v for k, v in ranking_metrics(rankings.items, rankings.targets, args.metric_ks).items()}
        metrics[f"{prefix}_invalid_rate"] = rankings.invalid_rate
        metrics[f"{prefix}_missing_rate"] = rankings.missing_rate
        metrics[f"{prefix}_users"] = int(rankings.items.shape[0])
        metrics[f"{prefix}_processes"] = self.accelerator.num_processes
        if self.compute_metrics is not None:
            metrics.update(self._user_metrics(rankings, prefix))
        metrics[f"{prefix}_runtime"] = round(time.time() - start, 2)
        return metrics

    def _user_metrics(self, rankings: Rankings, prefix: str) -> dict[str, float]:
        """``compute_metrics(EvalPrediction(predictions=top-K item ids, label_ids=target item ids))``, prefixed."""
        result = self.compute_metrics(EvalPrediction(predictions=rankings.items.numpy(), label_ids=rankings.targets.numpy()))
        if not isinstance(result, dict):
            raise InvalidInputError(
                f"compute_metrics must return a dict of metric name -> number, got {type(result).__name__}"
            )
        return {(key if key.startswith(f"{prefix}_") else f"{prefix}_{key}"): value for key, value in result.items()}

    @torch.no_grad()
    def rank(self, dataset: Dataset, top_k: int, num_beams: int) -> Rankings:
        """Top-``top_k`` items and scores for every row of ``dataset``, in the dataset's order.

        Rows are sorted by history length, dealt to the processes in turn (no process decodes a
        padding row) and ranked in batches of ``per_device_eval_batch_size``; each process gathers
        every process's lists.  *invalid*: returned IDs that name no catalogue item (the constraint
        makes it 0); *missing*: list positions left empty because excluded items used up the beams.
        """
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        lengths = [len(h) for h in dataset["history"]] if "history" in dataset.column_names else [0] * len(dataset)
        order, _ = length_order(lengths)
        shares = [order[r::world] for r in range(world)]  # length-sorted, so every process gets alike rows
        loader = torch.utils.data.DataLoader(
            dataset.select(shares[rank]), batch_size=self.args.per_device_eval_batch_size, collate_fn=self.eval_collator
        )
        self.callback_handler.eval_dataloader = loader  # the progress bar (ProgressCallback) counts its batches
        device = self.accelerator.device
        item_ids = self.item_ids.to(device)
        local_items, local_scores = [torch.empty(0, top_k, dtype=torch.long, device=device)], [torch.empty(0, top_k, device=device)]
        invalid_rows = torch.zeros((), dtype=torch.long, device=device)
        for batch in loader:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            batch.pop("targets")
            exclude = batch.pop("exclude", None)
            rows, scores = rank_batch(model, self.processor, batch, top_k=top_k, num_beams=num_beams, exclude=exclude)
            invalid_rows = invalid_rows + (rows >= len(item_ids)).sum()  # stays on the device
            local_items.append(torch.where(rows >= 0, item_ids[rows.clamp(min=0, max=len(item_ids) - 1)], torch.full_like(rows, PAD)))
            local_scores.append(scores.float())
            self.control = self.callback_handler.on_prediction_step(self.args, self.state, self.control)
        items = self._gather_shares(torch.cat(local_items), shares, PAD)
        scores = self._gather_shares(torch.cat(local_scores), shares, float("-inf"))
        counts = self.accelerator.gather(torch.tensor([len(shares[rank])], device=device))
        self.rows_per_process = counts.cpu().tolist()  # rows each process decoded: no padding rows
        invalid = int(self.accelerator.gather(invalid_rows.reshape(1)).sum())
        targets = pad_lists(dataset["targets"], width=max((len(t) for t in dataset["targets"]), default=1))
        return Rankings(
            items=items,
            scores=scores,
            targets=targets,
            invalid_rate=invalid / max(items.numel(), 1),
            missing_rate=float((items == PAD).sum()) / max(items.numel(), 1),
        )

    def _gather_shares(self, local: torch.Tensor, shares: list[list[int]], fill: float) -> torch.Tensor:
        """Every process's rows (process ``r`` holds the rows ``shares[r]``) in the dataset's order, on the CPU."""
        width = max(len(share) for share in shares)
        padded = local.new_full((width, local.shape[1]), fill)
        padded[: local.shape[0]] = local
        gathered = self.accelerator.gather(padded).cpu().view(len(shares), width, local.shape[1])
        out = gathered.new_full((sum(len(share) for share in shares), local.shape[1]), fill)
        for process, share in enumerate(shares):
            out[torch.as_tensor(share, dtype=torch.long)] = gathered[process, : len(share)]
        return out

    # ------------------------------------------------------------------ the Hub
    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Save the model, then publish ``output_dir`` as ``hf-genrec push`` does: hf_genrec's card (model-index
        from ``eval_results.json``), no pickle (``training_args.bin``), no absolute local path.  The push
        always completes before returning (``blocking`` is accepted for Trainer's signature)."""
        from ..hub.push import push_model_dir

        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        token = token if token is not None else self.args.hub_token
        return push_model_dir(
            self.args.output_dir, self._hub_repo_id(), token=token, private=bool(private if private is not None else self.args.hub_private_repo),
            commit_message=commit_message or "End of training", revision=revision or self.args.hub_revision, refresh_card=True,
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``hub_strategy: every_save`` publishes each saved checkpoint's model and processor the same way (no
        optimizer or RNG pickles; the other strategies, which upload those, are refused at construction)."""
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        from ..hub.push import push_model_dir

        push_model_dir(checkpoint_folder, self._hub_repo_id(), token=self.args.hub_token, private=bool(self.args.hub_private_repo),
                       commit_message=f"Training in progress, step {self.state.global_step}", refresh_card=True,
                       revision=self.args.hub_revision)

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """The repository is created by the first push (``push_model_dir``), not when training starts."""
        self.hub_model_id = self._hub_repo_id()
        self.push_in_progress = None

    def _hub_repo_id(self) -> str:
        return self.args.hub_model_id or Path(self.args.output_dir).resolve().name

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """hf_genrec's card (model-index from eval_results.json, the recipe) in ``output_dir``, not the generic one."""
        if self.is_world_process_zero():
            from ..hub import save_model_card

            save_model_card(self.args.output_dir, repo_id=self.args.hub_model_id)

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
