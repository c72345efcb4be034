"""Build a catalogue's SemanticIdTable with an RQ-VAE (trained with transformers.Trainer) or RQ-KMeans.

Pipeline: item texts -> sentence embeddings (cached) -> content codes -> disambiguation level ->
``semantic_ids.json`` saved beside the tokenizer's own files.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..errors import InvalidInputError
from ..semantic_ids import SemanticIdTable
from ..training.precision import PrecisionSwitchingTrainer
from ..training.rqvae_args import RQVAERecipe, load_rqvae_recipe
from .cooccurrence import smooth_with_cooccurrence
from .rqkmeans import RQKMeansConfig, RQKMeansTokenizer
from .rqvae import RQVAETokenizerConfig, RQVAETokenizerModel

logger = logging.getLogger(__name__)


class EmbeddingDataset(torch.utils.data.Dataset):
    """Rows ``{"embeddings": FloatTensor[D]}`` of an embedding matrix, for Trainer."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        self.embeddings = embeddings

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"embeddings": self.embeddings[index]}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        # one gather per batch instead of one indexing call per row
        return [{"embeddings": row} for row in self.embeddings[torch.as_tensor(indices)].unbind(0)]


def collate_embeddings(features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {"embeddings": torch.stack([f["embeddings"] for f in features])}


def code_statistics(item_ids: Sequence[int], content_codes: np.ndarray, codebook_size: int) -> dict:
    """Stats of content codes (usage, entropy, collisions before disambiguation) via SemanticIdTable."""
    return SemanticIdTable.from_content_codes(item_ids, content_codes, codebook_size).stats()


class StderrLogCallback(TrainerCallback):
    """Training logs as log records (stderr in the CLI): Trainer's printers write to stdout, which
    the CLI keeps for its JSON result."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            shown = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"}
            logger.info("step %d: %s", state.global_step, shown)


class RQVAETrainer(PrecisionSwitchingTrainer):
    """Trainer that logs the RQ-VAE's loss terms and, at each log step, the codebook quality of the
    whole catalogue (per-level usage and entropy, collision rate, largest collision group)."""

    def __init__(self, *args: Any, catalogue_embeddings: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remove_callback(PrinterCallback)
        self.remove_callback(ProgressCallback)
        self.add_callback(StderrLogCallback)
        self.catalogue_embeddings = catalogue_embeddings
        self._component_sums: dict[str, float] = defaultdict(float)
        self._component_steps = 0
        self.code_history: list[dict] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        for name, value in (outputs.loss_components or {}).items():
            self._component_sums[name] += float(value)
        self._component_steps += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._component_steps:
            for name, total in self._component_sums.items():
                logs[name] = round(total / self._component_steps, 4)
            self._component_sums.clear()
            self._component_steps = 0
            if self.catalogue_embeddings is not None:
                logs.update(self.catalogue_code_logs())
        super().log(logs, start_time)

    def catalogue_code_logs(self) -> dict[str, float]:
        model = self.accelerator.unwrap_model(self.model)
        codes = model.encode_codes(self.catalogue_embeddings).numpy()
        stats = code_statistics(range(len(codes)), codes, model.config.codebook_size)
        logs: dict[str, float] = {
            "collision_rate": round(stats["collision_rate"], 4),
            "max_items_per_prefix": stats["max_items_per_prefix"],
        }
        for level, (usage, entropy) in enumerate(zip(stats["usage_per_level"], stats["entropy_per_level"])):
            logs[f"usage_level_{level}"] = round(usage, 4)
            logs[f"entropy_level_{level}"] = round(entropy, 3)
        self.code_history.append({"step": self.state.global_step, **logs})
        return logs


def train_rqvae_tokenizer(
    embeddings: torch.Tensor,
    item_ids: Sequence[int],
    recipe: RQVAERecipe,
    training_args: TrainingArguments,
) -> tuple[RQVAETokenizerModel, SemanticIdTable, dict]:
    """Train an RQ-VAE on ``embeddings`` and return it with its (attached) semantic-ID table."""
    set_seed(training_args.seed)
    config = RQVAETokenizerConfig(input_dim=int(embeddings.shape[1]), **recipe.model_config_kwargs())
    model = RQVAETokenizerModel(config)
    model.set_input_statistics(embeddings)  # statistics of the whole catalogue, not of one batch
    if len(embeddings) < config.codebook_size:
        logger.warning("%d items for %d codes a level: many codes will stay unused", len(embeddings), config.codebook_size)
    trainer = RQVAETrainer(
        model=model,
        args=training_args,
        train_dataset=EmbeddingDataset(embeddings),
        data_collator=collate_embeddings,
        catalogue_embeddings=embeddings,
    )
    train_output = trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model).cpu().eval()
    codes = model.encode_codes(embeddings).numpy()
    table = SemanticIdTable.from_content_codes(item_ids, codes, config.codebook_size, method="rqvae")
    model.semantic_id_table = table
    history = {
        "train_loss": float(train_output.training_loss),
        "train_steps": int(train_output.global_step),
        "log_history": trainer.state.log_history,
    }
    return model, table, history


def fit_rqkmeans_tokenizer(
    embeddings: torch.Tensor, item_ids: Sequence[int], recipe: RQVAERecipe, seed: int = 42
) -> tuple[RQKMeansTokenizer, SemanticIdTable]:
    """Fit residual k-means on ``embeddings`` and return it with its semantic-ID table."""
    config = RQKMeansConfig(
        num_levels=recipe.num_levels,
        codebook_size=recipe.codebook_size,
        num_iters=recipe.kmeans_iters,
        init=recipe.kmeans_init,
        standardize_inputs=recipe.standardize_inputs,
        seed=seed,
    )
    tokenizer = RQKMeansTokenizer(config).fit(embeddings)
    table = tokenizer.build_table(item_ids, embeddings)
    return tokenizer, table


def load_catalogue(
    dataset_name: str, data_dir: str | os.PathLike | None = None
) -> tuple[list[int], list[str], dict[int, list[int]]]:
    """Item ids, their texts (aligned) and the users' training sequences, from the data layer."""
    from ..data import load_rec_dataset

    dataset = load_rec_dataset(dataset_name, data_dir=data_dir)
    return list(dataset.catalogue.item_ids), list(dataset.catalogue.texts()), dataset.train_sequences()


def build_semantic_ids(
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    method: str | None = None,
    recipe_path: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "semantic_ids",
    *,
    item_ids: Sequence[int] | None = None,
    texts: Sequence[str] | None = None,
    embeddings: torch.Tensor | None = None,
    sequences: dict[int, Sequence[int]] | Sequence[Sequence[int]] | None = None,
    device: str | None = None,
    plot_path: str | os.PathLike | None = None,
    show_progress_bar: bool = True,
    **overrides: Any,
) -> dict:
    """Build and save a semantic-ID table; returns a JSON-able summary.

    Items come from ``dataset_name`` through the data layer unless ``item_ids`` and ``texts`` (or
    precomputed ``embeddings``) are given; a recipe with ``cooccurrence_weight`` then also needs the
    users' training ``sequences`` (item ids, oldest first), and the saved tokenizer maps the mixed
    embeddings, not the text ones (``semantic_ids.json`` holds the IDs).  ``overrides`` set recipe /
    TrainingArguments fields over the YAML at ``recipe_path``.  The output directory receives the tokenizer (RQ-VAE:
    ``save_pretrained``; RQ-KMeans: centroids safetensors + JSON config) and ``semantic_ids.json``.
    """
    from ..item_encoders import encode_item_texts

    start = time.perf_counter()
    output_dir = Path(output_dir)
    if device == "cpu":
        overrides.setdefault("use_cpu", True)
    recipe, training_args = load_rqvae_recipe(
        recipe_path, dataset=dataset_name, data_dir=None if data_dir is None else str(data_dir), method=method,
        output_dir=str(output_dir), **overrides,
    )

    from_catalogue = item_ids is None
    if from_catalogue:
        if texts is not None or embeddings is not None or sequences is not None:
            raise InvalidInputError("pass item_ids together with texts, embeddings or sequences")
        item_ids, texts, sequences = load_catalogue(recipe.dataset, recipe.data_dir)
    item_ids = [int(i) for i in item_ids]
    embedding_seconds = 0.0
    if embeddings is None:
        if texts is None or len(texts) != len(item_ids):
            raise InvalidInputError("texts must be given, one per item id")
        t0 = time.perf_counter()
        embeddings = encode_item_texts(
            list(texts),
            recipe.encoder,
            batch_size=recipe.embedding_batch_size,
            cache_dir=recipe.embedding_cache_dir,
            device=device,
            show_progress_bar=show_progress_bar,
        )
        embedding_seconds = time.perf_counter() - t0
    # a fresh, contiguous copy: the same values then train identically whether they were just
    # encoded or read from the cache (SIMD kernels can round differently on other memory layouts)
    embeddings = torch.as_tensor(embeddings, dtype=torch.float32).cpu().contiguous().clone()
    if embeddings.ndim != 2 or embeddings.shape[0] != len(item_ids):
        raise InvalidInputError(f"embeddings of shape {tuple(embeddings.shape)} for {len(item_ids)} items")

    if recipe.cooccurrence_weight > 0:
        if sequences is None:
            raise InvalidInputError("cooccurrence_weight > 0 needs the users' training sequences: pass sequences=")
        embeddings = smooth_with_cooccurrence(
            embeddings, item_ids, sequences, recipe.cooccurrence_weight, recipe.cooccurrence_window
        )

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if recipe.method == "rqvae":
        model, table, history = train_rqvae_tokenizer(embeddings, item_ids, recipe, training_args)
        model.save_pretrained(output_dir)
        extra = {"train_loss": round(history["train_loss"], 4), "train_steps": history["train_steps"]}
        final = [h for h in history["log_history"] if "reconstruction_loss" in h]
        if final:
            extra["reconstruction_loss"] = final[-1]["reconstruction_loss"]
            extra["quantization_loss"] = final[-1]["quantization_loss"]
    else:
        tokenizer, table = fit_rqkmeans_tokenizer(embeddings, item_ids, recipe, seed=training_args.seed)
        tokenizer.save_pretrained(output_dir)
    fit_seconds = time.perf_counter() - t0

    stats = table.stats()
    summary = {
        "method": recipe.method,
        "dataset": recipe.dataset if from_catalogue else None,
        "items": stats["items"],
        "levels": stats["levels"],
        "codebook_size": recipe.codebook_size,
        "codebook_sizes": stats["codebook_sizes"],
        "cooccurrence_weight": recipe.cooccurrence_weight,
        "unique_ids": stats["unique_ids"],
        "unique_content_prefixes": stats["unique_content_prefixes"],
        "collision_rate": round(stats["collision_rate"], 6),
        "usage_per_level": [round(u, 4) for u in stats["usage_per_level"]],
        "entropy_per_level": [round(e, 3) for e in stats["entropy_per_level"]],
        "max_items_per_prefix": stats["max_items_per_prefix"],
        "embedding_seconds": round(embedding_seconds, 2),
        "fit_seconds": round(fit_seconds, 2),
        "seconds": round(time.perf_counter() - start, 2),
        "output_dir": str(output_dir),
        **extra,
    }
    if plot_path is not None:
        plot_semantic_id_stats(table, plot_path)
        summary["plot"] = str(plot_path)
    return summary


def plot_semantic_id_stats(table: SemanticIdTable, path: str | os.PathLike) -> Path:
    """Two panels: codebook usage per level, and how many ID prefixes hold k items (collisions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io_utils import atomic_path

    stats = table.stats()
    histogram = table.collision_histogram()
    fig, (ax_usage, ax_hist) = plt.subplots(1, 2, figsize=(10, 4))
    levels = list(range(len(stats["usage_per_level"])))
    ax_usage.bar(levels, [100 * u for u in stats["usage_per_level"]], color="tab:blue")
    ax_usage.set_xticks(levels)
    ax_usage.set_xlabel("level")
    ax_usage.set_ylabel("codes used (%)")
    ax_usage.set_ylim(0, 100)
    ax_usage.set_title("Codebook usage per level")
    ax_hist.bar(list(histogram.keys()), list(histogram.values()), color="tab:orange")
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("items sharing one content prefix")
    ax_hist.set_ylabel("prefixes")
    ax_hist.set_title(f"ID collisions ({table.method}, {table.num_items} items)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


__all__ = [
    "EmbeddingDataset",
    "RQVAETrainer",
    "StderrLogCallback",
    "build_semantic_ids",
    "code_statistics",
    "collate_embeddings",
    "fit_rqkmeans_tokenizer",
    "load_catalogue",
    "plot_semantic_id_stats",
    "train_rqvae_tokenizer",
]
