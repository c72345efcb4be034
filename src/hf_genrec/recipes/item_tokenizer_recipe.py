"""Recipe of an item-tokenizer build (RQ-VAE, RQ-KMeans, OPQ or ColaRec GIDs), read from YAML with HfArgumentParser.

One flat YAML holds both the recipe fields below and ``transformers.TrainingArguments`` fields
(optimiser, learning rate, epochs, batch size), e.g. ``training_args/rqvae-beauty.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from ..errors import ConfigError
from .yaml_recipes import parse_with_defaults

METHODS = ("rqvae", "rqkmeans", "opq", "colarec-kmeans")


@dataclass
class ItemTokenizerRecipe:
    """What to tokenize and how: the item text encoder, the co-occurrence mix, the quantiser (RQ-VAE,
    RQ-KMeans, or ColaRec's LightGCN + constrained k-means GIDs); the optimiser lives in TrainingArguments."""

    dataset: str = field(default="amazon-beauty", metadata={"help": "dataset name for hf_genrec.data.load_rec_dataset"})
    data_dir: str | None = field(default=None, metadata={"help": "benchmark data directory (default: the data layer's)"})
    method: str = field(
        default="rqvae",
        metadata={"help": "rqvae (trained), rqkmeans (residual k-means), opq (product quantisation: long parallel IDs) or colarec-kmeans (LightGCN + size-capped k-means)"},
    )
    encoder: str | None = field(
        default=None, metadata={"help": "sentence-transformers model id or path (default: bundled all-MiniLM-L6-v2)"}
    )
    embedding_batch_size: int = field(default=64, metadata={"help": "batch size of the sentence encoder"})
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "embedding cache (default: $HF_GENREC_CACHE or ~/.cache/hf_genrec/embeddings)"}
    )
    num_levels: int = field(default=3, metadata={"help": "content levels of a semantic ID (opq: digits; colarec-kmeans: all levels)"})
    codebook_size: int = field(default=256, metadata={"help": "codes per level (colarec-kmeans: clusters a level)"})
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256, 128], metadata={"help": "RQ-VAE MLP widths"})
    latent_dim: int = field(default=32, metadata={"help": "RQ-VAE latent width"})
    beta: float = field(default=0.25, metadata={"help": "commitment weight"})
    activation: str = field(default="relu", metadata={"help": "MLP activation"})
    dropout: float = field(default=0.0, metadata={"help": "MLP dropout"})
    rotation_trick: bool = field(default=False, metadata={"help": "rotation trick instead of straight-through"})
    dead_code_window: int = field(default=20, metadata={"help": "restart codes unused for this many steps (0: never)"})
    standardize_inputs: bool = field(default=True, metadata={"help": "standardise embeddings per dimension"})
    reconstruction_reduction: str = field(default="sum", metadata={"help": "sum or mean over dimensions"})
    kmeans_iters: int = field(default=20, metadata={"help": "Lloyd iterations (codebook init / RQ-KMeans)"})
    kmeans_init: str = field(default="kmeans++", metadata={"help": "RQ-KMeans seeding: kmeans++ or random"})
    kmeans_max_points_per_centroid: int = field(
        default=256,
        metadata={"help": "RQ-KMeans fits each level on a seeded sample of at most this many items a centroid, then assigns all (0: fit on all)"},
    )
    rotation_iters: int = field(default=20, metadata={"help": "opq: rounds of sub-space k-means + orthogonal rotation"})
    cooccurrence_weight: float = field(
        default=0.0,
        metadata={"help": "add this times the mean standardised embedding of items co-occurring in training sequences (0: text only)"},
    )
    cooccurrence_window: int = field(default=3, metadata={"help": "positions apart that count as co-occurring"})
    lightgcn_epochs: int = field(default=20, metadata={"help": "colarec-kmeans: LightGCN epochs (BPR on training interactions)"})
    lightgcn_dim: int = field(default=64, metadata={"help": "colarec-kmeans: LightGCN embedding width"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"recipe field 'method' must be one of {METHODS}, got {self.method!r}")
        if self.cooccurrence_weight < 0:
            raise ConfigError(f"recipe field 'cooccurrence_weight' must be >= 0, got {self.cooccurrence_weight}")
        for name in ("num_levels", "codebook_size", "latent_dim", "embedding_batch_size", "cooccurrence_window",
                     "lightgcn_epochs", "lightgcn_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"recipe field {name!r} must be >= 1, got {getattr(self, name)}")
        if self.kmeans_max_points_per_centroid < 0:
            raise ConfigError(f"recipe field 'kmeans_max_points_per_centroid' must be >= 0, got {self.kmeans_max_points_per_centroid}")

    def model_config_kwargs(self) -> dict[str, Any]:
        """The RQVAETokenizerConfig arguments this recipe sets (input_dim comes from the encoder)."""
        names = (
            "num_levels", "codebook_size", "hidden_dims", "latent_dim", "beta", "activation", "dropout",
            "rotation_trick", "dead_code_window", "standardize_inputs", "reconstruction_reduction", "kmeans_iters",
        )
        return {name: getattr(self, name) for name in names}


# Trainer settings of the default recipe (training_args/rqvae-beauty.yaml); a YAML overrides them.
# TrainingArguments' own defaults (3 epochs, batch 8, lr 5e-5) would barely move an RQ-VAE.
DEFAULT_TRAINING_VALUES: dict[str, Any] = {
    "seed": 42,
    "num_train_epochs": 100,
    "per_device_train_batch_size": 1024,
    "learning_rate": 2e-3,
    "optim": "adamw_torch",
    "weight_decay": 0.0,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0,
    "logging_steps": 240,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_pin_memory": False,
}


def load_item_tokenizer_recipe(
    path: str | os.PathLike | None = None, **overrides: Any
) -> tuple[ItemTokenizerRecipe, TrainingArguments]:
    """Parse a flat YAML recipe (recipe + TrainingArguments keys) over :data:`DEFAULT_TRAINING_VALUES`;
    ``overrides`` win over the file.

    Unknown keys and bad values raise :class:`ConfigError` naming the file.
    """
    return parse_with_defaults((ItemTokenizerRecipe, TrainingArguments), DEFAULT_TRAINING_VALUES, path, overrides, "rqvae_output")


__all__ = ["DEFAULT_TRAINING_VALUES", "METHODS", "ItemTokenizerRecipe", "load_item_tokenizer_recipe"]
