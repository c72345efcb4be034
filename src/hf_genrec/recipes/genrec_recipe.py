"""The recipe fields every recommender shares: data, semantic IDs, what to score at the end.

A recipe is one flat YAML holding these fields, the fields of its model family's own recipe
dataclass (registered with the family, e.g. ``TigerRecipe``) and those of
:class:`~hf_genrec.recipes.training_arguments.GenRecTrainingArguments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

SEMANTIC_ID_METHODS = ("rqvae", "rqkmeans", "opq", "colarec-kmeans")


@dataclass
class GenRecRecipe:
    """What to train on and how items are identified (the model's shape is the family's recipe)."""

    model_family: str = field(default="tiger", metadata={"help": "a registered model family: tiger, colarec, sasrec"})
    dataset: str = field(default="amazon-beauty", metadata={"help": "dataset name under the data directory"})
    data_dir: str | None = field(default=None, metadata={"help": "default: $HF_GENREC_DATA or ../shared/data"})
    max_history: int = field(default=20, metadata={"help": "items of history the model reads"})
    semantic_ids: str | None = field(default=None, metadata={"help": "folder or file of an existing semantic-ID table"})
    semantic_id_method: str | None = field(
        default=None, metadata={"help": "rqvae, rqkmeans, opq or colarec-kmeans (default: the family's)"}
    )
    semantic_id_recipe: str | None = field(default=None, metadata={"help": "recipe YAML of the item tokenizer"})
    test_at_end: bool = field(default=True, metadata={"help": "score the test split once, with the selected model"})

    def __post_init__(self) -> None:
        if self.max_history < 1:
            raise ConfigError(f"max_history must be >= 1, got {self.max_history}")
        if self.semantic_id_method is not None and self.semantic_id_method not in SEMANTIC_ID_METHODS:
            raise ConfigError(
                f"semantic_id_method must be one of {', '.join(SEMANTIC_ID_METHODS)}, got {self.semantic_id_method!r}"
            )


@dataclass
class FamilyRecipe:
    """Base of every family's own recipe dataclass (registered with the family)."""

    def semantic_id_overrides(self, num_items: int) -> dict:
        """Item-tokenizer recipe fields this family sets for a catalogue of ``num_items`` (e.g. ColaRec's GID
        shape); none by default."""
        return {}

    def checkpoint_semantic_ids(self) -> str | None:
        """The folder whose ID table training must use when the recipe names none (a checkpoint being fine-tuned)."""
        return None


def check_non_negative(recipe: object, names: tuple[str, ...], minimum: float = 0) -> None:
    """ConfigError naming the first of ``names`` whose value is below ``minimum`` (or not finite)."""
    import math

    for name in names:
        value = getattr(recipe, name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")


__all__ = ["FamilyRecipe", "GenRecRecipe", "SEMANTIC_ID_METHODS", "check_non_negative"]
