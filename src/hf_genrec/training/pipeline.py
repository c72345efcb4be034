"""`hf-genrec train`: recipe -> semantic IDs -> the family's model and processor -> GenRecTrainer -> saved, evaluated model."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import yaml
from transformers import set_seed

from ..data import RecDataset, load_rec_dataset
from ..errors import CheckpointMismatchError, ConfigError
from ..io_utils import atomic_write_json, atomic_write_text
from ..item_tokenizers.build import build_semantic_ids
from ..semantic_ids.id_table import SemanticIdTable
from .recipe_loading import ParsedRecipe
from .trainer import GenRecTrainer

logger = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.json"
RECIPE_FILE = "recipe.yaml"
ITEM_TOKENIZER_DIR = "item_tokenizer"


def item_ids_table(parsed: ParsedRecipe, dataset: RecDataset, output_dir: Path) -> SemanticIdTable:
    """Load the recipe's semantic-ID table, or build it into ``output_dir/item_tokenizer``."""
    recipe = parsed.recipe
    source = recipe.semantic_ids or parsed.family_recipe.checkpoint_semantic_ids()
    if source:
        table = SemanticIdTable.load(source)
    else:
        table = build_semantic_ids(
            dataset=dataset,
            method=recipe.semantic_id_method,
            recipe_path=recipe.semantic_id_recipe,
            output_dir=output_dir / ITEM_TOKENIZER_DIR,
            seed=parsed.training_args.seed,
            **parsed.family_recipe.semantic_id_overrides(),
        ).table
    missing = [item for item in dataset.catalogue.item_ids if item not in table]
    if missing:
        source = source or output_dir / ITEM_TOKENIZER_DIR
        raise CheckpointMismatchError(f"{source}: the semantic-ID table lacks {len(missing)} catalogue items, e.g. {missing[:5]}")
    return with_dataset_item_keys(table, dataset, recipe.semantic_ids or output_dir / ITEM_TOKENIZER_DIR)


def with_dataset_item_keys(table: SemanticIdTable, dataset: RecDataset, source: object) -> SemanticIdTable:
    """The table carrying the dataset's original item keys (imported datasets), so the checkpoint answers in them."""
    keys = dataset.item_keys
    if keys is None:
        return table
    wanted = [keys.key_of(item) if item in dataset.catalogue else None for item in table.item_ids]
    if table.item_keys is not None:
        clash = [(i, a, b) for i, a, b in zip(table.item_ids, table.item_keys, wanted) if b is not None and a != b]
        if clash:
            item, had, want = clash[0]
            raise CheckpointMismatchError(f"{source}: item {item} has key {had!r} in the semantic-ID table but {want!r} in the dataset")
        return table
    if None in wanted:  # table items outside the catalogue have no key to carry
        return table
    return table.with_item_keys(wanted)


def train_from_recipe(parsed: ParsedRecipe, resume_from_checkpoint: str | bool | None = None) -> dict:
    started = time.time()
    recipe, args, family = parsed.recipe, parsed.training_args, parsed.family
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_rec_dataset(recipe.dataset, recipe.data_dir)
    splits = dataset.splits(recipe.max_history)
    table = item_ids_table(parsed, dataset, output_dir) if family.uses_semantic_ids else None
    set_seed(args.seed)  # the model's initial weights depend on it; Trainer seeds only after the model exists
    components = family.build(recipe, parsed.family_recipe, dataset, splits, table, args.seed)
    attn_implementation = getattr(parsed.family_recipe, "attn_implementation", None)
    if attn_implementation:
        components.model.set_attn_implementation(attn_implementation)

    trainer = GenRecTrainer(
        model=components.model,
        args=args,
        train_dataset=components.train_dataset,
        eval_dataset=splits["validation"],
        data_collator=components.train_collator,
        processor=components.processor,
    )
    train_output = trainer.train(resume_from_checkpoint=resolve_checkpoint(output_dir, resume_from_checkpoint))
    # the selected model when load_best_model_at_end (a LoRA run: its adapter), and its processor; a push_to_hub
    # recipe publishes at the end, once eval_results.json and recipe.yaml are there for the card
    trainer.save_model(str(output_dir), _internal_call=True)
    atomic_write_text(output_dir / RECIPE_FILE, yaml.safe_dump(parsed.values, sort_keys=False))
    if args.plot_loss_curves and trainer.is_world_process_zero():
        trainer.plot_loss_curves(str(output_dir / "loss_curves.png"))

    result = {"train_seconds": round(time.time() - started, 1), "train_loss": train_output.training_loss,
              "train_processes": trainer.accelerator.num_processes}
    validation = trainer.evaluate(metric_key_prefix="validation")  # the selected model, on the selection sample
    result.update(validation)
    if recipe.test_at_end:
        test = trainer.evaluate(splits["test"], metric_key_prefix="test")
        result.update(test)
        result["test_rows_per_process"] = trainer.rows_per_process
        if trainer.is_world_process_zero():
            write_eval_results(output_dir, dataset, "test", {k[len("test_"):]: v for k, v in test.items() if k.startswith("test_")}, recipe.max_history, args)
    if args.push_to_hub:
        result["hub_url"] = trainer.push_to_hub()
    result["seconds"] = round(time.time() - started, 1)
    return result


def resolve_checkpoint(output_dir: Path, resume: str | bool | None) -> str | None:
    """`True` means the newest *complete* checkpoint in ``output_dir``: one cut short by a crash is skipped."""
    if not resume:
        return None
    if resume is not True:
        if not (Path(resume) / "trainer_state.json").exists():
            raise ConfigError(f"{resume}: not a complete checkpoint (no trainer_state.json)")
        return str(resume)
    complete = [p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists() and p.name[11:].isdigit()]
    if not complete:
        raise ConfigError(f"{output_dir}: no complete checkpoint to resume from")
    return str(max(complete, key=lambda p: int(p.name[11:])))


def write_eval_results(output_dir: Path, dataset: RecDataset, split: str, metrics: dict, max_history: int, args) -> dict:
    record = {
        "dataset": dataset.name,
        "split": split,
        "protocol": dataset.describe_protocol(max_history),
        "num_beams": args.generation_num_beams,
        **{k: v for k, v in metrics.items() if k not in ("runtime",)},
    }
    atomic_write_json(Path(output_dir) / EVAL_RESULTS_FILE, record, indent=2)
    return record


__all__ = ["EVAL_RESULTS_FILE", "RECIPE_FILE", "item_ids_table", "resolve_checkpoint", "train_from_recipe", "write_eval_results"]
