"""The model-family registry: one place that knows every recommender family of the package.

A family is a plug-in: its folder holds ``configuration_*.py``, ``modeling_*.py`` and
``processing_*.py`` plus a ``family.py`` that builds it from a recipe, and it registers itself once
with :func:`register_family` (config, model, processor, tokenizer, the family's recipe fields and
their defaults, its card template).  Training, evaluation, inference, the Hub cards and the CLI
look families up here instead of branching on ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError
from ..remote_code import register_auto_classes


@dataclass
class FamilyComponents:
    """What training needs from a family: built from a recipe, a dataset and (for generative
    families) a semantic-ID table."""

    model: Any
    processor: Any
    train_dataset: Any
    train_collator: Callable
    tokenizer: Any = None


@dataclass(frozen=True)
class ModelFamily:
    """One recommender family.

    ``build(recipe, family_recipe, dataset, splits, table, seed) -> FamilyComponents`` assembles a
    fresh model for training; ``load_processor(model_dir, recipe, dataset)`` builds the processor of a
    saved checkpoint that predates saved processors (``None`` when it cannot).  ``uses_semantic_ids``
    is False for families that score item ids directly (SASRec); ``semantic_id_method`` is the
    default ID method of a recipe of this family.
    """

    name: str
    config_class: type
    model_class: type
    processor_class: type
    recipe_class: type
    build: Callable[..., FamilyComponents]
    card_template: str
    card_tags: tuple[str, ...]
    task_name: str
    auto_classes: tuple[str, ...] = ("AutoModel", "AutoModelForSeq2SeqLM")
    tokenizer_class: type | None = None
    uses_semantic_ids: bool = True
    semantic_id_method: str | None = "rqkmeans"
    load_processor: Callable[..., Any] | None = field(default=None)


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Register a family (idempotent for the same name) and its classes with the Auto classes."""
    register_auto_classes(
        family.config_class, family.model_class, family.auto_classes,
        tokenizer_class=family.tokenizer_class, processor_class=family.processor_class,
    )
    _FAMILIES[family.name] = family
    return family


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``; ConfigError listing the known ones otherwise."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r}; known families: {family_names()}") from None


def family_of_model_type(model_type: str) -> ModelFamily | None:
    """The family whose config has this ``model_type`` (``None`` if no family has it)."""
    for family in _FAMILIES.values():
        if family.config_class.model_type == model_type:
            return family
    return None


__all__ = ["FamilyComponents", "ModelFamily", "family_names", "family_of_model_type", "get_family", "register_family"]
