"""Reading a training recipe: one flat YAML -> (GenRecRecipe, the family's recipe, GenRecTrainingArguments).

The family (``model_family``, default ``tiger``) decides which recipe dataclass holds the model's
fields, so unknown keys, wrong types and out-of-range values are ConfigErrors naming the key and
the file, whatever the family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..models.registry import ModelFamily, get_family
from ..recipes.genrec_recipe import GenRecRecipe
from ..recipes.training_arguments import GenRecTrainingArguments
from ..recipes.yaml_recipes import apply_overrides, parse_into, read_yaml_mapping
from .recipe_checks import check_recipe_values


@dataclass
class ParsedRecipe:
    """A recipe as written (``values``, overrides applied) and as parsed."""

    values: dict
    recipe: GenRecRecipe
    family_recipe: Any
    training_args: GenRecTrainingArguments

    @property
    def family(self) -> ModelFamily:
        return get_family(self.recipe.model_family)


def parse_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ParsedRecipe:
    """Read a recipe YAML; ``overrides`` are ``key=value`` strings applied on top (values parsed as YAML)."""
    values = apply_overrides(read_yaml_mapping(path), overrides)
    name = values.get("model_family", GenRecRecipe.model_family)
    if not isinstance(name, str):
        raise ConfigError(f"{path}: key 'model_family' expects str, got {name!r}")
    try:
        family = get_family(name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    recipe, family_recipe, training_args = parse_into((GenRecRecipe, family.recipe_class, GenRecTrainingArguments), values, path)
    if recipe.semantic_id_method is None:
        recipe.semantic_id_method = family.semantic_id_method
    recipe.semantic_id_recipe = _beside_recipe(recipe.semantic_id_recipe, path)
    parsed = ParsedRecipe(values, recipe, family_recipe, training_args)
    check_recipe_values(parsed, path)
    return parsed


def _beside_recipe(name: str | None, recipe_path: str | os.PathLike) -> str | None:
    """A relative file name from the working directory if it exists there, else from the recipe's own folder
    (so a recipe naming a sibling file works from any directory)."""
    if name is None or os.path.isabs(name) or os.path.exists(name):
        return name
    beside = Path(recipe_path).resolve().parent / name
    if not beside.exists():
        raise ConfigError(f"{recipe_path}: semantic_id_recipe {name!r} exists neither in {os.getcwd()} nor beside the recipe")
    return str(beside)


__all__ = ["ParsedRecipe", "parse_recipe"]
