"""`hf-genrec train`: recipe -> semantic IDs -> the family's model and processor -> GenRecTrainer -> saved, evaluated model."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import yaml
from transformers import TrainerCallback, set_seed

from ..data import RecDataset, load_rec_dataset
from ..errors import CheckpointMismatchError, ConfigError
from ..evaluation.records import EVAL_RESULTS_FILE, catalogue_summary
from ..io_utils import atomic_write_json, atomic_write_text
from ..item_tokenizers.build import build_semantic_ids
from ..models.weight_checks import check_weights_fit
from ..output_folders import (
    OVERWRITE_HINT, RunMarker, check_output_folder, checkpoint_folder, claim_output_folder, is_own, own_checkpoints,
    read_marker,
)
from ..recipes.yaml_recipes import RECIPE_FILE
from ..semantic_ids.id_table import SemanticIdTable
from .recipe_checks import check_recipe_values
from .recipe_loading import ParsedRecipe
from .run_identity import run_marker
from .trainer import GenRecTrainer

logger = logging.getLogger(__name__)

ITEM_TOKENIZER_DIR = "item_tokenizer"


def item_ids_table(parsed: ParsedRecipe, dataset: RecDataset, output_dir: Path) -> SemanticIdTable:
    """Load the recipe's semantic-ID table, or build it into ``output_dir/item_tokenizer``.

    The table must name exactly the dataset's catalogue: an item without an ID cannot be trained
    on, and an ID of an item outside the dataset would be recommended.
    """
    recipe = parsed.recipe
    given = recipe.semantic_ids or parsed.family_recipe.checkpoint_semantic_ids()
    if given:
        table = SemanticIdTable.load(given)
    else:
        table = build_semantic_ids(
            dataset=dataset,
            method=recipe.semantic_id_method,
            recipe_path=recipe.semantic_id_recipe,
            output_dir=output_dir / ITEM_TOKENIZER_DIR,
            seed=parsed.training_args.seed,
            score_test=recipe.test_at_end,
            **parsed.family_recipe.semantic_id_overrides(len(dataset.catalogue)),
        ).table
    source = given or output_dir / ITEM_TOKENIZER_DIR
    missing = [item for item in dataset.catalogue.item_ids if item not in table]
    if missing:
        raise CheckpointMismatchError(f"{source}: the semantic-ID table lacks {len(missing)} catalogue items, e.g. {missing[:5]}")
    extra = sorted(set(table.item_ids) - set(dataset.catalogue.item_ids))
    if extra:
        raise CheckpointMismatchError(
            f"{source}: the semantic-ID table has {len(extra)} items that are not in dataset {dataset.name!r}, e.g. "
            f"{extra[:5]}: the model would recommend them"
        )
    return with_dataset_item_keys(table, dataset, source)


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
    """Train, select on validation, score the test split once; everything lands in the recipe's ``output_dir``.

    The folder must be empty, or this run's own (its run marker), or ``overwrite_output_dir``; it is
    locked while the run writes (``hf_genrec.output_folders``).  Values, data and folder are checked
    before any training.
    """
    started = time.time()
    recipe, args, family = parsed.recipe, parsed.training_args, parsed.family
    check_recipe_values(parsed, "recipe")
    output_dir = _output_dir(parsed)
    dataset = load_rec_dataset(recipe.dataset, recipe.data_dir)
    splits = dataset.splits(recipe.max_history)
    data_report = dataset.split_report()
    marker = run_marker(parsed, dataset)
    main_process = _is_main_process()
    if main_process:  # the other ranks would race with rank 0's files in the folder; rank 0 refusing ends the launch
        check_output_folder(output_dir, marker, overwrite=args.overwrite_output_dir, resume=bool(resume_from_checkpoint))
    checkpoint = resolve_checkpoint(output_dir, resume_from_checkpoint, marker, adopt_unmarked=args.overwrite_output_dir)
    with claim_output_folder(output_dir, marker, overwrite=args.overwrite_output_dir, resume=bool(resume_from_checkpoint),
                             main_process=main_process):
        table = item_ids_table(parsed, dataset, output_dir) if family.uses_semantic_ids else None
        set_seed(args.seed)  # the model's initial weights depend on it; Trainer seeds only after the model exists
        components = family.build(recipe, parsed.family_recipe, dataset, splits, table, args.seed)
        attn_implementation = getattr(parsed.family_recipe, "attn_implementation", None)
        if attn_implementation:
            components.model.set_attn_implementation(attn_implementation)
        if checkpoint is not None:
            check_weights_fit(components.model, checkpoint, config_source="the recipe")

        trainer = GenRecTrainer(
            model=components.model,
            args=args,
            train_dataset=components.train_dataset,
            eval_dataset=splits["validation"],
            data_collator=components.train_collator,
            processor=components.processor,
            run_marker=marker,
        )
        recipe_text = yaml.safe_dump(parsed.values, sort_keys=False)
        trainer.add_callback(RecipeInCheckpoints(recipe_text))
        train_output = trainer.train(resume_from_checkpoint=checkpoint)
        # the selected model when load_best_model_at_end (a LoRA run: its adapter), and its processor; a push_to_hub
        # recipe publishes at the end, once eval_results.json and recipe.yaml are there for the card
        trainer.save_model(str(output_dir), _internal_call=True)
        atomic_write_text(output_dir / RECIPE_FILE, recipe_text)
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
                metrics = {k[len("test_"):]: v for k, v in test.items() if k.startswith("test_")}
                write_eval_results(output_dir, dataset, "test", metrics, recipe.max_history, args,
                                   item_ids=components.processor.item_ids, data_report=data_report.get("test"))
        if args.push_to_hub:
            result["hub_url"] = trainer.push_to_hub()
    _leave_process_group()
    result["seconds"] = round(time.time() - started, 1)
    return result


class RecipeInCheckpoints(TrainerCallback):
    """Each checkpoint carries the run's ``recipe.yaml``, as the final folder does: ``hf-genrec evaluate`` on a
    checkpoint then reads the recipe's dataset, beam width and cut-offs instead of needing ``--dataset`` and
    decoding with a width that is not the recipe's (20 beams scored a 100-beam ColaRec checkpoint low)."""

    def __init__(self, recipe_text: str) -> None:
        self.recipe_text = recipe_text

    def on_save(self, args, state, control, **kwargs):
        folder = checkpoint_folder(args.output_dir, state.global_step)
        if args.should_save and folder.is_dir():
            atomic_write_text(folder / RECIPE_FILE, self.recipe_text)
        return control


def _leave_process_group() -> None:
    """In a distributed launch, wait until every rank is done before any returns.

    A rank that exits while another still writes closes its gloo connections under the other's
    feet, which aborted the other (SIGABRT).  The group is not destroyed here: the trainer's
    objects still hold it, and destroying it first hung their clean-up under FSDP.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _output_dir(parsed: ParsedRecipe) -> Path:
    """The recipe's ``output_dir``; empty is an error (TrainingArguments would silently use ./trainer_output)."""
    value = parsed.values.get("output_dir")
    if value is None or not str(value).strip():
        raise ConfigError("the recipe's output_dir is empty: set output_dir in the recipe or pass --output-dir")
    return Path(str(value))


def _is_main_process() -> bool:
    """Rank 0 of a distributed launch (torchrun / accelerate set RANK), or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_checkpoint(output_dir: Path, resume: str | bool | None, marker: RunMarker | None = None,
                       adopt_unmarked: bool = False) -> str | None:
    """The checkpoint to resume from, checked to be this run's (its run marker), or None.

    `True` means the newest *complete* checkpoint of this run in ``output_dir``: one cut short by a
    crash is skipped, and another run's is never taken.  ``adopt_unmarked`` (``overwrite_output_dir``)
    also accepts checkpoints without a marker (written before markers existed).
    """
    if not resume:
        return None
    if resume is not True:
        path = Path(resume)
        if not (path / "trainer_state.json").exists():
            raise ConfigError(f"{resume}: not a complete checkpoint (no trainer_state.json)")
        saved = read_marker(path)
        if marker is not None and (saved is not None or not adopt_unmarked) and not is_own(path, marker):
            hint = "" if saved is not None else f"; {OVERWRITE_HINT}"
            raise ConfigError(f"{resume}: cannot resume from another run's checkpoint: {marker.differences(saved)}{hint}")
        return str(resume)
    candidates = own_checkpoints(output_dir, marker, adopt_unmarked=adopt_unmarked, complete=True)
    if not candidates:
        raise ConfigError(f"{output_dir}: no complete checkpoint of this run to resume from")
    return str(candidates[-1])


def write_eval_results(output_dir: Path, dataset: RecDataset, split: str, metrics: dict, max_history: int, args,
                       item_ids: list[int] | None = None, data_report: dict | None = None) -> dict:
    """The training's own test record, ``eval_results.json`` (the model card's model-index comes from it alone)."""
    record = {
        "dataset": dataset.name,
        "split": split,
        "protocol": dataset.describe_protocol(max_history),
        "num_beams": args.generation_num_beams,
        **{k: v for k, v in metrics.items() if k not in ("runtime",)},
        "written_by": "hf-genrec train",
    }
    if item_ids is not None:
        record["catalogue"] = catalogue_summary(item_ids)
    if data_report:
        record["data_report"] = data_report
    atomic_write_json(Path(output_dir) / EVAL_RESULTS_FILE, record, indent=2)
    return record


__all__ = ["RecipeInCheckpoints", "item_ids_table", "resolve_checkpoint", "train_from_recipe", "write_eval_results"]
