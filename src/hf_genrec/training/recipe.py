"""Recipes: one flat YAML per run, read with HfArgumentParser into (GenRecRecipe, GenRecTrainingArguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from types import UnionType
from typing import Sequence, Union, get_args, get_origin, get_type_hints

import yaml
from transformers import HfArgumentParser

from ..errors import ConfigError
from .arguments import GenRecTrainingArguments


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
        if self.model_family not in ("tiger", "colarec"):
            raise ConfigError(f"model_family must be 'tiger' or 'colarec', got {self.model_family!r}")
        if self.semantic_id_method not in ("rqvae", "rqkmeans", "colarec-kmeans"):
            raise ConfigError(f"semantic_id_method must be rqvae, rqkmeans or colarec-kmeans, got {self.semantic_id_method!r}")


@dataclass
class ParsedRecipe:
    """A recipe as written (``values``, overrides applied) and as parsed."""

    values: dict
    recipe: GenRecRecipe
    training_args: GenRecTrainingArguments


def parse_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ParsedRecipe:
    """Read a recipe YAML; ``overrides`` are ``key=value`` strings applied on top (values parsed as YAML).

    Unknown keys and wrong types are ConfigErrors naming the key and the file.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: recipe file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe is a flat mapping of keys to values")
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} is not key=value")
        values[key.strip().replace("-", "_")] = yaml.safe_load(raw)
    known = {f.name for cls in (GenRecRecipe, GenRecTrainingArguments) for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown recipe keys {unknown}")
    _check_types(values, path)
    parser = HfArgumentParser((GenRecRecipe, GenRecTrainingArguments))
    try:
        recipe, training_args = parser.parse_dict(values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return ParsedRecipe(values, recipe, training_args)


def _check_types(values: dict, path: str | os.PathLike) -> None:
    """HfArgumentParser.parse_dict neither coerces nor checks scalar types: a wrong type is named here."""
    hints = {**get_type_hints(GenRecTrainingArguments), **get_type_hints(GenRecRecipe)}
    for key, value in values.items():
        if value is None:
            continue
        accepted = _scalar_types(hints.get(key))
        if accepted and not (isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted)):
            names = " or ".join(t.__name__ for t in accepted)
            raise ConfigError(f"{path}: key {key!r} expects {names}, got {value!r}")


def _scalar_types(hint: object) -> tuple[type, ...]:
    """The plain scalar types a hint admits (int admits nothing else; float admits int); () if not scalar."""
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    options = tuple(o for o in options if o is not type(None))
    if not options or not all(o in (int, float, str, bool) for o in options):
        return ()
    return tuple({*options, *((int,) if float in options else ())})
