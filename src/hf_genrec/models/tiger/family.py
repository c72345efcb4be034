"""TIGER as a registered family: its recipe fields and how a recipe builds it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from datasets import DatasetDict

from ...data import RecDataset
from ...errors import ConfigError
from ...recipes.genrec_recipe import check_non_negative
from ...semantic_ids.id_table import SemanticIdTable
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..processing_utils import with_length_column
from ..registry import FamilyComponents, ModelFamily, register_family
from ..t5_recipe import T5ShapeRecipe
from .configuration_tiger import TigerConfig
from .modeling_tiger import TigerForGenerativeRecommendation
from .processing_tiger import TigerDataCollator, TigerProcessor


@dataclass
class TigerRecipe(T5ShapeRecipe):
    """TIGER's own recipe fields (besides the T5 shape)."""

    num_user_buckets: int = field(default=2000, metadata={"help": "hashed user tokens (TIGER: 2000; 0: none)"})
    init_from_t5: str | None = field(default=None, metadata={"help": "optional pretrained T5 name or path"})
    init_from_checkpoint: str | None = field(
        default=None,
        metadata={"help": "a trained TIGER folder to fine-tune (its weights, tokenizer and semantic IDs; shape fields are ignored)"},
    )
    lora_r: int = field(default=0, metadata={"help": "with init_from_checkpoint: train a LoRA adapter of this rank, saved alone (0: every weight)"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q", "k", "v", "o", "wi", "wo"],
        metadata={"help": "T5 linear layers that get adapters (attention q/k/v/o, feed-forward wi/wo)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_user_buckets < 0:
            raise ConfigError(f"num_user_buckets must be >= 0, got {self.num_user_buckets}")
        check_non_negative(self, ("lora_r", "lora_alpha", "lora_dropout"))
        if self.lora_r and not self.init_from_checkpoint:
            raise ConfigError("lora_r needs init_from_checkpoint: LoRA adapts a trained TIGER")
        if self.init_from_checkpoint and self.init_from_t5:
            raise ConfigError("init_from_checkpoint and init_from_t5 exclude each other")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules is empty")

    def checkpoint_semantic_ids(self) -> str | None:
        """A fine-tuned checkpoint keeps its own ID table (the model's output vocabulary)."""
        return self.init_from_checkpoint


def build_tiger(recipe: Any, family_recipe: TigerRecipe, dataset: RecDataset, splits: DatasetDict,
                table: SemanticIdTable, seed: int) -> FamilyComponents:
    if family_recipe.init_from_checkpoint:
        model, tokenizer = checkpoint_to_fine_tune(family_recipe, table)
        processor = TigerProcessor(tokenizer, max_history=recipe.max_history)
        return FamilyComponents(model=model, processor=processor, train_dataset=with_length_column(splits["train"]),
                                train_collator=TigerDataCollator(processor), tokenizer=tokenizer)
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=family_recipe.num_user_buckets)
    if family_recipe.init_from_t5:
        model = TigerForGenerativeRecommendation.from_t5_pretrained(family_recipe.init_from_t5, tokenizer)
    else:
        model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **family_recipe.t5_shape()))
    processor = TigerProcessor(tokenizer, max_history=recipe.max_history)
    return FamilyComponents(
        model=model,
        processor=processor,
        train_dataset=with_length_column(splits["train"]),
        train_collator=TigerDataCollator(processor),
        tokenizer=tokenizer,
    )


def checkpoint_to_fine_tune(family_recipe: TigerRecipe, table: SemanticIdTable) -> tuple[Any, GenRecTokenizer]:
    """The trained model and tokenizer of ``init_from_checkpoint``; with ``lora_r`` the model is wrapped by peft
    (only the adapter trains and is saved; its ``base_model_name_or_path`` is the checkpoint's absolute path)."""
    source = Path(family_recipe.init_from_checkpoint).resolve()
    if not (source / "config.json").is_file():
        raise ConfigError(f"init_from_checkpoint {family_recipe.init_from_checkpoint!r}: not a saved TIGER folder (no config.json)")
    tokenizer = GenRecTokenizer.from_pretrained(source, trust_remote_code=False)
    if tokenizer.semantic_id_table != table:
        raise ConfigError(
            f"init_from_checkpoint {str(source)!r}: the recipe's semantic_ids differ from the checkpoint's ID table "
            "(leave semantic_ids unset to use the checkpoint's)"
        )
    model = TigerForGenerativeRecommendation.from_pretrained(source, trust_remote_code=False)
    if family_recipe.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            task_type="SEQ_2_SEQ_LM", r=family_recipe.lora_r, lora_alpha=family_recipe.lora_alpha,
            lora_dropout=family_recipe.lora_dropout, target_modules=list(family_recipe.lora_target_modules),
        ))
    return model, tokenizer


def load_legacy_tiger_processor(model_dir: str | os.PathLike, recipe: dict, dataset: RecDataset | None) -> TigerProcessor:
    """A checkpoint saved before processors were: its tokenizer and its recipe's ``max_history``."""
    return TigerProcessor(GenRecTokenizer.from_pretrained(model_dir, trust_remote_code=False), max_history=int(recipe.get("max_history", 20)))


TIGER = register_family(
    ModelFamily(
        name="tiger",
        config_class=TigerConfig,
        model_class=TigerForGenerativeRecommendation,
        processor_class=TigerProcessor,
        recipe_class=TigerRecipe,
        build=build_tiger,
        card_template="tiger.md",
        card_tags=("tiger", "sequential-recommendation"),
        task_name="Sequential Recommendation",
        tokenizer_class=GenRecTokenizer,
        load_processor=load_legacy_tiger_processor,
    )
)

__all__ = ["TIGER", "TigerRecipe", "build_tiger"]
