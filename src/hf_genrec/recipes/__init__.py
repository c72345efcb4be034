"""Recipes: flat YAML files read into dataclasses with HfArgumentParser (YAML 1.2 scalars, unknown keys
and wrong types refused), the recipe fields every recommender shares, the training arguments, and the
recipes of the item tokenizer and the LoRA item encoder.  A model family's own fields are its
registered recipe dataclass (``hf_genrec.models.<family>.family``)."""

from .genrec_recipe import FamilyRecipe, GenRecRecipe
from .item_encoder_recipe import ItemEncoderLoraArguments, load_item_encoder_recipe
from .item_tokenizer_recipe import ItemTokenizerRecipe, load_item_tokenizer_recipe
from .training_arguments import GenRecTrainingArguments
from .yaml_recipes import load_recipe_yaml, parse_into, parse_with_defaults, read_yaml_mapping

__all__ = [
    "FamilyRecipe",
    "GenRecRecipe",
    "GenRecTrainingArguments",
    "ItemEncoderLoraArguments",
    "ItemTokenizerRecipe",
    "load_item_encoder_recipe",
    "load_item_tokenizer_recipe",
    "load_recipe_yaml",
    "parse_into",
    "parse_with_defaults",
    "read_yaml_mapping",
]
