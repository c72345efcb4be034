"""Loading, scoring and querying a saved model folder (what `hf-genrec evaluate` / `recommend` run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..data import RecDataset, load_rec_dataset
from ..errors import CheckpointMismatchError, ConfigError, DataFormatError, InvalidInputError, UnknownDatasetError
from ..evaluation.records import add_evaluation_record, read_evaluation_records
from ..generation import recommend
from ..generation.recommend import histories_to_ids, item_key_map
from ..io_utils import read_json
from ..models.adapter_folders import adapter_base, family_of_model, load_adapter
from ..models.processing_utils import PROCESSOR_FILE
from ..models.registry import ModelFamily, family_names, family_of_model_type
from ..models.weight_checks import check_weights_fit, model_skeleton
from ..output_folders import check_writable_folder
from ..recipes.training_arguments import GenRecTrainingArguments
from ..recipes.yaml_recipes import RECIPE_FILE, load_recipe_yaml, yaml_problem
from ..training.trainer import GenRecTrainer
from .prediction_files import check_new_output, evaluation_lines, write_jsonl
from .checks import catalogue_record, check_positive_arguments, describe_ranking, saved_num_beams, saved_recipe_value
from .loading_errors import loading


@dataclass
class SavedModel:
    """A folder written by `hf-genrec train`: the model, its processor, its family and its training recipe."""

    model: Any
    processor: Any
    family: ModelFamily
    recipe: dict
    directory: Path


def read_saved_recipe(model_dir: str | os.PathLike) -> dict:
    """The ``recipe.yaml`` a training run saved beside its model (``{}`` when there is none)."""
    path = Path(model_dir) / RECIPE_FILE
    if not path.exists():
        return {}
    try:
        recipe = load_recipe_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"unreadable recipe ({exc})", path=path) from None
    except yaml.YAMLError as exc:
        raise DataFormatError(f"invalid YAML ({yaml_problem(exc)})", path=path) from None
    if not isinstance(recipe, dict):
        raise DataFormatError("a saved recipe is a mapping of keys to values", path=path)
    return recipe


def family_of_dir(model_dir: str | os.PathLike) -> ModelFamily:
    """The registered family of a saved model folder, from ``config.json``'s ``model_type``."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise DataFormatError("not a saved model folder (no config.json)", path=model_dir)
    config = read_json(model_dir / "config.json", "model config")
    model_type = config.get("model_type") if isinstance(config, dict) else None
    family = family_of_model_type(str(model_type))
    if family is None:
        raise CheckpointMismatchError(
            f"{model_dir / 'config.json'}: model_type {model_type!r} is not a recommender family of hf_genrec "
            f"({', '.join(family_names())})"
        )
    return family


def load_saved_model(model_dir: str | os.PathLike, dataset: RecDataset | None = None) -> SavedModel:
    """Model and processor of a saved folder.

    A folder saved before processors were saved (no ``processor_config.json``) gets its processor
    rebuilt from its tokenizer and recipe; ColaRec's also needs ``dataset`` (the item texts).
    """
    model_dir = Path(model_dir)
    base = adapter_base(model_dir)  # a folder of adapter weights names the model they adapt
    family = family_of_dir(model_dir) if base is None else family_of_model(base)
    recipe = read_saved_recipe(model_dir)
    if (model_dir / PROCESSOR_FILE).exists():
        processor = loading(model_dir, "processor", lambda: family.processor_class.from_pretrained(model_dir, trust_remote_code=False))
    else:
        processor = loading(model_dir, "processor", lambda: family.load_processor(model_dir, recipe, dataset)) if family.load_processor else None
        if processor is None:
            raise DataFormatError(f"no {PROCESSOR_FILE}, and the processor cannot be rebuilt without the dataset", path=model_dir)
    source = base or model_dir  # an adapter folder's model is its base plus the adapter
    config = loading(model_dir, "config.json", lambda: family.config_class.from_pretrained(source, trust_remote_code=False))
    loading(model_dir, "config.json", lambda: processor.check_model(config))  # before the weights: a mismatch is named, not a shape error
    if base is None or Path(base).is_dir():
        check_weights_fit(loading(model_dir, "model", lambda: model_skeleton(family.model_class, config)), source)
    model = loading(model_dir, "weights", lambda: family.model_class.from_pretrained(source, config=config, trust_remote_code=False))
    if base is not None:
        model = loading(model_dir, "adapter", lambda: load_adapter(model, model_dir))
    model.eval()
    return SavedModel(model, processor, family, recipe, model_dir)


def optional_dataset(model_dir: str | os.PathLike, dataset: str | None = None, data_dir: str | None = None) -> RecDataset | None:
    """The dataset named by the arguments (errors raised) or by the folder's recipe (``None`` when it cannot be loaded:
    titles are a convenience, recommending does not need the data)."""
    recipe = read_saved_recipe(model_dir)
    try:
        return _dataset_for(recipe, dataset, data_dir, model_dir)
    except (DataFormatError, UnknownDatasetError):
        if dataset is not None:
            raise
        return None


def _dataset_for(recipe: dict, dataset: str | None, data_dir: str | None, model_dir: str | os.PathLike = ".") -> RecDataset:
    name = dataset or saved_recipe_value(recipe, "dataset", None, model_dir)
    if not name:
        raise DataFormatError("the model folder has no recipe.yaml: pass --dataset")
    return load_rec_dataset(name, data_dir if data_dir is not None else saved_recipe_value(recipe, "data_dir", None, model_dir))


def evaluate_saved_model(
    model_dir: str | os.PathLike,
    split: str = "test",
    dataset: str | None = None,
    data_dir: str | None = None,
    num_beams: int | None = None,
    batch_size: int = 256,
    max_users: int | None = None,
    scratch_dir: str = ".",
    predictions: str | os.PathLike | None = None,
    overwrite: bool = False,
    allow_catalogue_mismatch: bool = False,
    save_record: bool = True,
) -> dict:
    """Score a saved model on a split; a whole-split score is added to the folder's ``evaluations.json``;
    ``predictions`` also writes each user's top-K (a prediction file, see
    :mod:`~hf_genrec.inference.prediction_files`).

    The training's own record (``eval_results.json``, the model card's source) is never touched.
    Arguments, the model's catalogue, the folder's writability and the prediction file are checked
    before the work.
    """
    check_positive_arguments(num_beams=num_beams, batch_size=batch_size, max_users=max_users)
    if split not in ("validation", "test"):
        raise InvalidInputError(f"split must be 'validation' or 'test', got {split!r}")
    if predictions is not None:
        check_new_output(predictions, overwrite)
    recipe = read_saved_recipe(model_dir)
    rec_dataset = _dataset_for(recipe, dataset, data_dir, model_dir)
    saved = load_saved_model(model_dir, rec_dataset)
    catalogue = catalogue_record(model_dir, saved.processor.item_ids, rec_dataset, allow_catalogue_mismatch)
    keep_record = save_record and not max_users
    if keep_record:
        read_evaluation_records(model_dir)  # a malformed file is reported now, not after the evaluation
        try:
            check_writable_folder(model_dir, "model folder")
        except ConfigError as exc:
            raise ConfigError(f"{exc}: the evaluation record cannot be saved there; pass --no-record to only print the metrics") from None
    max_history = saved_recipe_value(recipe, "max_history", 20, model_dir)
    rows = rec_dataset.splits(max_history)[split]
    data_report = rec_dataset.split_report()[split]
    if max_users:
        rows = rows.select(range(min(max_users, len(rows))))
    default_ks = [5, 10] if rec_dataset.protocol == "leave-one-out" else [5, 10, 20]
    ks = saved_recipe_value(recipe, "metric_ks", default_ks, model_dir)
    args = GenRecTrainingArguments(
        output_dir=scratch_dir,
        per_device_eval_batch_size=batch_size,
        generation_num_beams=num_beams or saved_num_beams(recipe, model_dir, ks),
        metric_ks=ks,
        report_to="none",
        use_cpu=not _cuda_available(),
    )
    trainer = GenRecTrainer(model=saved.model, args=args, processor=saved.processor)
    metrics = trainer.evaluate(rows, metric_key_prefix=split)
    result = {k[len(split) + 1 :]: v for k, v in metrics.items() if k.startswith(split + "_")}
    protocol = describe_ranking(rec_dataset.describe_protocol(max_history), catalogue)
    record = {
        "model": str(model_dir),
        **result,
        "rows_per_process": trainer.rows_per_process,
        "protocol": protocol,
        "dataset": rec_dataset.name,
        "split": split,
        "num_beams": args.generation_num_beams,
        "catalogue": catalogue,
        "data_report": data_report,
        "written_by": "hf-genrec evaluate",
    }
    if keep_record and trainer.is_world_process_zero():
        add_evaluation_record(model_dir, {k: v for k, v in record.items() if k not in ("model", "rows_per_process", "runtime")})
    if predictions is not None and trainer.is_world_process_zero():
        ranked = trainer.last_rankings
        record["predictions"] = str(predictions)
        write_jsonl(predictions, evaluation_lines(rows, ranked.items.tolist(), ranked.scores.tolist()))
    return record


def recommend_with_saved_model(
    model_dir: str | os.PathLike,
    history: Sequence[int | str],
    top_k: int = 10,
    num_beams: int | None = None,
    user_id: int | None = None,
    dataset: str | None = None,
    data_dir: str | None = None,
    by_key: bool | None = None,
    user_key: str | None = None,
) -> dict:
    """Top-``top_k`` items for one history.

    A model trained on an imported dataset carries its item keys: ``history`` is then read as
    original keys and the answer names each item by key and id (``by_key=False`` reads internal
    ids instead); otherwise ``history`` holds item ids.  ``user_key`` is looked up in the dataset's
    user map.  Titles come from the dataset when it can be loaded.
    """
    check_positive_arguments(top_k=top_k, num_beams=num_beams)
    rec_dataset = optional_dataset(model_dir, dataset, data_dir)
    saved = load_saved_model(model_dir, rec_dataset)
    num_beams = num_beams or saved_num_beams(saved.recipe, model_dir)
    catalogue = rec_dataset.catalogue if rec_dataset is not None else None
    if by_key is None:
        by_key = saved.processor.item_keys is not None
    key_map = item_key_map(saved.processor) if by_key else None
    items = histories_to_ids(key_map, [history])[0] if key_map is not None else [_item_id(item) for item in history]
    if user_key is not None:
        if user_id is not None:
            raise InvalidInputError("give a user id or a user key, not both")
        if rec_dataset is None or rec_dataset.user_keys is None:
            raise InvalidInputError("user keys need the dataset the model was trained on, with its users.jsonl (pass --dataset / --data-dir)")
        user_id = rec_dataset.user_keys.id_of(user_key)
    ranked = recommend(saved.model, saved.processor, [items], k=top_k, num_beams=num_beams,
                       user_ids=[user_id] if user_id is not None else None)[0]
    out = []
    for item, score in ranked:
        entry: dict[str, Any] = {"item_id": item}
        if key_map is not None:
            entry["item_key"] = key_map.key_of(item)
        entry["score"] = score
        if catalogue and item in catalogue:
            entry["title"] = catalogue.title(item)
        out.append(entry)
    return {"history": list(history), "recommendations": out}


def _item_id(value: int | str) -> int:
    """An internal item id given as an int or as decimal text (the command line's form)."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise InvalidInputError(f"history item {value!r} is not an item id (and the model carries no item keys)") from None
    return value


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


__all__ = [
    "SavedModel", "evaluate_saved_model", "family_of_dir", "load_saved_model", "optional_dataset", "read_saved_recipe",
    "recommend_with_saved_model",
]
