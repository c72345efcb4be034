"""Recipe of a LoRA item-encoder adaptation (``hf-genrec finetune-item-encoder``), read from YAML.

One flat YAML holds the fields below and ``SentenceTransformerTrainingArguments`` fields, e.g.
``training_args/item-encoder-lora-beauty.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .yaml_recipes import parse_with_defaults

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformerTrainingArguments

POOLING_MODES = ("mean", "lasttoken")


@dataclass
class ItemEncoderLoraArguments:
    """What to adapt and on which pairs (the optimiser lives in SentenceTransformerTrainingArguments)."""

    dataset: str = field(default="amazon-beauty", metadata={"help": "dataset name for hf_genrec.data.load_rec_dataset"})
    data_dir: str | None = field(default=None, metadata={"help": "benchmark data directory (default: the data layer's)"})
    base_model: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers model or plain transformers (LLM) checkpoint; null = bundled MiniLM"},
    )
    base_model_id: str | None = field(
        default=None, metadata={"help": "Hub id recorded as the adapter's base (default: derived from base_model)"}
    )
    pooling: str | None = field(
        default=None, metadata={"help": "plain transformers bases only: mean or lasttoken (default mean)"}
    )
    max_seq_length: int = field(default=64, metadata={"help": "tokens kept per item text"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "module names to adapt (null: peft's default for the architecture)"}
    )
    pair_window: int = field(default=1, metadata={"help": "pair each item with the next N items of a history"})
    max_train_pairs: int | None = field(default=None, metadata={"help": "cap on training pairs (null: all)"})
    eval_pairs: int = field(default=500, metadata={"help": "pairs held out for the before/after measure (0: none)"})
    eval_top_k: int = field(default=10, metadata={"help": "K of recall@K in the before/after measure"})
    eval_batch_size: int = field(default=128, metadata={"help": "encoder batch size of the before/after measure"})

    def __post_init__(self) -> None:
        for name in ("max_seq_length", "lora_r", "lora_alpha", "pair_window", "eval_top_k", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"recipe field {name!r} must be an integer >= 1, got {value!r}")
        if not isinstance(self.eval_pairs, int) or self.eval_pairs < 0:
            raise ConfigError(f"recipe field 'eval_pairs' must be an integer >= 0, got {self.eval_pairs!r}")
        if self.max_train_pairs is not None and (not isinstance(self.max_train_pairs, int) or self.max_train_pairs < 1):
            raise ConfigError(f"recipe field 'max_train_pairs' must be null or >= 1, got {self.max_train_pairs!r}")
        if not 0.0 <= float(self.lora_dropout) < 1.0:
            raise ConfigError(f"recipe field 'lora_dropout' must be in [0, 1), got {self.lora_dropout!r}")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise ConfigError(f"recipe field 'pooling': pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.lora_target_modules is not None and not (
            isinstance(self.lora_target_modules, list) and all(isinstance(m, str) for m in self.lora_target_modules)
        ):
            raise ConfigError(f"recipe field 'lora_target_modules' must be a list of names, got {self.lora_target_modules!r}")


# Trainer settings of the default recipe; a YAML and the CLI override them.
DEFAULT_TRAINING_VALUES: dict[str, Any] = {
    "seed": 42,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 64,
    "learning_rate": 5e-4,
    "weight_decay": 0.0,
    "lr_scheduler_type": "linear",
    "warmup_steps": 50,
    "batch_sampler": "no_duplicates",
    "logging_steps": 50,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_pin_memory": False,
}


def load_item_encoder_recipe(
    path: str | os.PathLike | None = None, **overrides: Any
) -> tuple[ItemEncoderLoraArguments, "SentenceTransformerTrainingArguments"]:
    """Parse a flat YAML (recipe + ``SentenceTransformerTrainingArguments`` keys) with the package's
    recipe reader (HfArgumentParser after key and type checks), over :data:`DEFAULT_TRAINING_VALUES`;
    non-``None`` ``overrides`` win.  Unknown keys and bad values raise :class:`ConfigError` naming the file."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    classes = (ItemEncoderLoraArguments, SentenceTransformerTrainingArguments)
    return parse_with_defaults(classes, DEFAULT_TRAINING_VALUES, path, overrides, "item_encoder_lora")


__all__ = ["DEFAULT_TRAINING_VALUES", "ItemEncoderLoraArguments", "POOLING_MODES", "load_item_encoder_recipe"]
