"""The one entry that builds a catalogue's semantic IDs: :func:`build_semantic_ids`.

Pipeline: item texts -> sentence embeddings (cached) -> optional co-occurrence mix -> content codes
(RQ-VAE or RQ-KMeans) -> disambiguation level; or, for ``colarec-kmeans``, LightGCN on the training
interactions -> size-capped hierarchical k-means.  Whatever the method, the result is a
:class:`SemanticIdBuild`: the table (also saved as ``semantic_ids.json`` beside the item tokenizer's
own files in ``output_dir``) and a JSON-able summary.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data import RecDataset, load_rec_dataset
from ..errors import InvalidInputError
from ..recipes.item_tokenizer_recipe import ItemTokenizerRecipe, load_item_tokenizer_recipe
from ..semantic_ids.id_table import SemanticIdTable
from .colarec_gids import build_colarec_gids
from .cooccurrence import smooth_with_cooccurrence
from .plots import plot_semantic_id_stats
from .opq import OPQConfig, OPQTokenizer
from .rqkmeans import RQKMeansConfig, RQKMeansTokenizer
from .rqvae_training import train_rqvae_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class SemanticIdBuild:
    """What :func:`build_semantic_ids` made: the item -> ID table and a summary of how (JSON-able)."""

    table: SemanticIdTable
    summary: dict


def fit_rqkmeans_tokenizer(
    embeddings: torch.Tensor, item_ids: Sequence[int], recipe: ItemTokenizerRecipe, seed: int = 42
) -> tuple[RQKMeansTokenizer, SemanticIdTable]:
    """Fit residual k-means on ``embeddings`` and return it with its semantic-ID table."""
    config = RQKMeansConfig(
        num_levels=recipe.num_levels,
        codebook_size=recipe.codebook_size,
        num_iters=recipe.kmeans_iters,
        init=recipe.kmeans_init,
        standardize_inputs=recipe.standardize_inputs,
        seed=seed,
        max_points_per_centroid=recipe.kmeans_max_points_per_centroid,
    )
    tokenizer = RQKMeansTokenizer(config).fit(embeddings)
    table = tokenizer.build_table(item_ids, embeddings)
    return tokenizer, table


def attach_item_keys(table: SemanticIdTable, item_ids: Sequence[int], item_keys: Sequence[str]) -> SemanticIdTable:
    """``table`` carrying the original keys of ``item_ids`` (in the table's own row order)."""
    if len(item_keys) != len(item_ids):
        raise InvalidInputError(f"{len(item_keys)} item keys for {len(item_ids)} item ids")
    key_of = dict(zip((int(i) for i in item_ids), item_keys))
    missing = [item for item in table.item_ids if item not in key_of]
    if missing:
        raise InvalidInputError(f"no key for items {missing[:5]} of the semantic-ID table")
    return table.with_item_keys([key_of[item] for item in table.item_ids])


def warn_about_items_without_text(texts: Sequence[str]) -> int:
    """Count the items whose text is empty; warn when they are many (>= 1% of the catalogue, at least 2):
    their text embeddings are all the same, so they share one content ID and differ only by the
    disambiguation code."""
    blank = sum(1 for text in texts if not str(text).strip())
    if blank >= max(2, 0.01 * len(texts)):
        logger.warning(
            "%d of %d items (%.1f%%) have no text: they get one and the same text embedding, hence one content "
            "ID prefix (told apart only by the disambiguation code)", blank, len(texts), 100 * blank / max(len(texts), 1),
        )
    return blank


def fit_opq_tokenizer(
    embeddings: torch.Tensor, item_ids: Sequence[int], recipe: ItemTokenizerRecipe, seed: int = 42
) -> tuple[OPQTokenizer, SemanticIdTable]:
    """Fit optimized product quantisation (``num_levels`` digits of ``codebook_size`` codes) and return it with its table."""
    config = OPQConfig(
        num_digits=recipe.num_levels,
        codebook_size=recipe.codebook_size,
        rotation_iters=recipe.rotation_iters,
        kmeans_iters=recipe.kmeans_iters,
        standardize_inputs=recipe.standardize_inputs,
        seed=seed,
    )
    tokenizer = OPQTokenizer(config).fit(embeddings)
    return tokenizer, tokenizer.build_table(item_ids, embeddings)


def build_semantic_ids(
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    method: str | None = None,
    recipe_path: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "semantic_ids",
    *,
    dataset: RecDataset | None = None,
    item_ids: Sequence[int] | None = None,
    item_keys: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    embeddings: torch.Tensor | None = None,
    sequences: dict[int, Sequence[int]] | Sequence[Sequence[int]] | None = None,
    device: str | None = None,
    plot_path: str | os.PathLike | None = None,
    show_progress_bar: bool = True,
    score_test: bool = True,
    **overrides: Any,
) -> SemanticIdBuild:
    """Build and save a semantic-ID table.

    Items come from ``dataset`` (or the dataset named ``dataset_name``) unless ``item_ids`` and
    ``texts`` (or precomputed ``embeddings``) are given (with ``item_keys``, the items' original
    keys, if any: a dataset's own are taken from it); a recipe with ``cooccurrence_weight`` then
    also needs the users' training ``sequences`` (item ids, oldest first), and the saved tokenizer
    maps the mixed embeddings, not the text ones (``semantic_ids.json`` holds the IDs).
    ``colarec-kmeans`` needs a dataset (its training interactions).  ``overrides`` set recipe /
    TrainingArguments fields over the YAML at ``recipe_path``.  The output directory receives the
    tokenizer (RQ-VAE: ``save_pretrained``; RQ-KMeans: centroids safetensors + JSON config; ColaRec:
    LightGCN weights and results) and ``semantic_ids.json``.  ``score_test=False`` keeps LightGCN's
    report (colarec-kmeans) to validation, for a training run that leaves the test split unread.
    """
    start = time.perf_counter()
    output_dir = Path(output_dir)
    if device == "cpu":
        overrides.setdefault("use_cpu", True)
    if dataset is not None:
        dataset_name = dataset.name
    recipe, training_args = load_item_tokenizer_recipe(
        recipe_path, dataset=dataset_name, data_dir=None if data_dir is None else str(data_dir), method=method,
        output_dir=str(output_dir), **overrides,
    )
    from_catalogue = item_ids is None
    if from_catalogue:
        if texts is not None or embeddings is not None or sequences is not None:
            raise InvalidInputError("pass item_ids together with texts, embeddings or sequences")
        if dataset is None:
            dataset = load_rec_dataset(recipe.dataset, data_dir=recipe.data_dir)
        item_ids, texts, sequences = list(dataset.catalogue.item_ids), list(dataset.catalogue.texts()), dataset.train_sequences()
        keys = dataset.item_keys
        item_keys = keys.keys_of(item_ids) if keys is not None else None
    item_ids = [int(i) for i in item_ids]
    extra: dict[str, Any] = {}
    text_based = texts is not None and embeddings is None and recipe.method != "colarec-kmeans"
    without_text = warn_about_items_without_text(texts) if text_based else None
    embedding_seconds = 0.0

    t0 = time.perf_counter()
    if recipe.method == "colarec-kmeans":
        if dataset is None:
            raise InvalidInputError("colarec-kmeans GIDs are built from a dataset's training interactions: pass a dataset")
        table = build_colarec_gids(
            dataset, output_dir, levels=recipe.num_levels, clusters=recipe.codebook_size,
            lightgcn_dim=recipe.lightgcn_dim, lightgcn_epochs=recipe.lightgcn_epochs, seed=training_args.seed,
            score_test=score_test,
        )
    else:
        if embeddings is None:
            from ..item_encoders.sentence_encoder import encode_item_texts  # sentence-transformers: only to encode

            if texts is None or len(texts) != len(item_ids):
                raise InvalidInputError("texts must be given, one per item id")
            embeddings = encode_item_texts(
                list(texts), recipe.encoder, batch_size=recipe.embedding_batch_size, cache_dir=recipe.embedding_cache_dir,
                device=device, show_progress_bar=show_progress_bar,
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
        if recipe.method == "rqvae":
            model, table, history = train_rqvae_tokenizer(embeddings, item_ids, recipe, training_args)
            model.save_pretrained(output_dir)
            extra = {"train_loss": round(history["train_loss"], 4), "train_steps": history["train_steps"]}
            final = [h for h in history["log_history"] if "loss_reconstruction" in h]
            if final:
                extra["reconstruction_loss"] = final[-1]["loss_reconstruction"]
                extra["quantization_loss"] = final[-1]["loss_quantization"]
        elif recipe.method == "opq":
            tokenizer, table = fit_opq_tokenizer(embeddings, item_ids, recipe, seed=training_args.seed)
            tokenizer.save_pretrained(output_dir)
            extra = {"reconstruction_error": round(tokenizer.reconstruction_error(embeddings), 4)}
        else:
            tokenizer, table = fit_rqkmeans_tokenizer(embeddings, item_ids, recipe, seed=training_args.seed)
            tokenizer.save_pretrained(output_dir)
    fit_seconds = time.perf_counter() - t0
    if item_keys is not None:  # the keys travel with the IDs into every checkpoint
        table = attach_item_keys(table, item_ids, item_keys)
        table.save(output_dir)

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
        **({"items_without_text": without_text} if without_text is not None else {}),
    }
    if plot_path is not None:
        plot_semantic_id_stats(table, plot_path)
        summary["plot"] = str(plot_path)
    return SemanticIdBuild(table, summary)


__all__ = ["SemanticIdBuild", "attach_item_keys", "build_semantic_ids", "fit_opq_tokenizer", "fit_rqkmeans_tokenizer"]
