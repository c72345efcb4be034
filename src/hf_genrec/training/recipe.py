"""Recipes: one flat YAML per run, read with HfArgumentParser into (GenRecRecipe, GenRecTrainingArguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


from ..errors import ConfigError
from .arguments import GenRecTrainingArguments
from .yaml_recipes import apply_overrides, parse_into, read_yaml_mapping


@dataclass
class GenRecRecipe:
    """What to train: the data, the item IDs, and the model's shape (training itself is in the arguments)."""

    model_family: str = field(default="tiger", metadata={"help": "tiger or colarec"})
    dataset: str = field(default="amazon-beauty", metadata={"help": "dataset name under the data directory"})
    data_dir: str | None = field(default=None, metadata={"help": "default: $HF_GENREC_DATA or ../shared/data"})
    max_history: int = field(default=20, metadata={"help": "items of history the model reads"})
    semantic_ids: str | None = field(default=None, metadata={"help": "folder or file of an existing semantic-ID table"})
    semantic_id_method: str = field(default="rqkmeans", metadata={"help": "rqvae, rqkmeans or colarec-kmeans"})
    semantic_id_recipe: str | None = field(default=None, metadata={"help": "recipe YAML of the item tokenizer"})
    num_user_buckets: int = field(default=2000, metadata={"help": "hashed user tokens (TIGER: 2000)"})
    d_model: int = 128
    d_ff: int = 1024
    d_kv: int = 64
    num_heads: int = 6
    num_layers: int = 4
    num_decoder_layers: int = 4
    dropout_rate: float = 0.1
    attn_implementation: str | None = field(
        default=None, metadata={"help": "T5 attention kernel for training: eager, sdpa, or hf_genrec_eager (eager with cheap CPU dropout masks, fastest on CPU)"}
    )
    init_from_t5: str | None = field(default=None, metadata={"help": "optional pretrained T5 name or path"})
    test_at_end: bool = field(default=True, metadata={"help": "score the test split once, with the selected model"})
    # ColaRec only: collaborative GIDs, item content inputs, loss weights
    lightgcn_epochs: int = field(default=20, metadata={"help": "LightGCN epochs (BPR on training interactions)"})
    lightgcn_dim: int = 64
    gid_levels: int = 3
    gid_clusters: int = field(default=32, metadata={"help": "clusters a level of the constrained k-means GIDs"})
    text_vocab_size: int = field(default=8000, metadata={"help": "Unigram text vocabulary trained on item texts"})
    max_items_per_user: int = 20
    max_tokens_per_item: int = 30
    max_input_length: int = 256
    users_per_item: int = field(default=1, metadata={"help": "user slots in an item's indexing input"})
    use_item_position_embeddings: bool = False
    rec_loss_weight: float = 1.0
    index_loss_weight: float = 1.0
    bpr_loss_weight: float = 1.0
    contrastive_loss_weight: float = 0.1

    def __post_init__(self) -> None:
        positive = ("max_history", "d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers",
                    "lightgcn_epochs", "lightgcn_dim", "gid_levels", "gid_clusters", "text_vocab_size",
                    "max_items_per_user", "max_tokens_per_item", "max_input_length")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_user_buckets", "users_per_item", "dropout_rate", "rec_loss_weight", "index_loss_weight",
                     "bpr_loss_weight", "contrastive_loss_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.model_family not in ("tiger", "colarec"):
            raise ConfigError(f"model_family must be 'tiger' or 'colarec', got {self.model_family!r}")
        if self.semantic_id_method not in ("rqvae", "rqkmeans", "colarec-kmeans"):
            raise ConfigError(f"semantic_id_method must be rqvae, rqkmeans or colarec-kmeans, got {self.semantic_id_method!r}")


    def t5_shape(self) -> dict:
        """The T5 encoder-decoder dimensions both model families are configured with."""
        names = ("d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "dropout_rate")
        return {name: getattr(self, name) for name in names}


@dataclass
class ParsedRecipe:
    """A recipe as written (``values``, overrides applied) and as parsed."""

    values: dict
    recipe: GenRecRecipe
    training_args: GenRecTrainingArguments


def parse_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ParsedRecipe:
    """Read a recipe YAML; ``overrides`` are ``key=value`` strings applied on top (values parsed as YAML).

    Unknown keys, wrong types and out-of-range values are ConfigErrors naming the key and the file.
    """
    values = apply_overrides(read_yaml_mapping(path), overrides)
    recipe, training_args = parse_into((GenRecRecipe, GenRecTrainingArguments), values, path)
    recipe.semantic_id_recipe = _beside_recipe(recipe.semantic_id_recipe, path)
    return ParsedRecipe(values, recipe, training_args)


def _beside_recipe(name: str | None, recipe_path: str | os.PathLike) -> str | None:
    """A relative file name from the working directory if it exists there, else from the recipe's own folder
    (so a recipe naming a sibling file works from any directory)."""
    if name is None or os.path.isabs(name) or os.path.exists(name):
        return name
    beside = Path(recipe_path).resolve().parent / name
    if not beside.exists():
        raise ConfigError(f"{recipe_path}: semantic_id_recipe {name!r} exists neither in {os.getcwd()} nor beside the recipe")
    return str(beside)
