"""Scoring and querying a saved model folder (what `hf-genrec evaluate` / `recommend` run)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..data import RecDataset, load_rec_dataset
from ..errors import CheckpointMismatchError, DataFormatError
from ..generation import build_id_tables, recommend
from .arguments import GenRecTrainingArguments
from .pipeline import RECIPE_FILE, write_eval_results
from .trainer import GenRecTrainer
from .yaml_recipes import load_recipe_yaml


def load_saved_model(model_dir: str | os.PathLike) -> tuple[Any, Any, dict]:
    """Model, tokenizer and training recipe of a folder written by `hf-genrec train`."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    import hf_genrec  # noqa: F401  (registers the Auto classes)

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise DataFormatError("not a saved model folder (no config.json)", path=model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    check_model_matches_tokenizer(SimpleNamespace(config=AutoConfig.from_pretrained(model_dir)), tokenizer)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    recipe_path = model_dir / RECIPE_FILE
    recipe = load_recipe_yaml(recipe_path.read_text(encoding="utf-8")) if recipe_path.exists() else {}
    model.eval()
    return model, tokenizer, recipe


def check_model_matches_tokenizer(model: Any, tokenizer: Any) -> None:
    """The tokenizer's ID table and vocabulary must be the ones the model's config was built for."""
    config, table = model.config, tokenizer.semantic_id_table
    problems = []
    if list(config.codebook_sizes) != list(table.codebook_sizes):
        problems.append(
            f"model codebook sizes {list(config.codebook_sizes)} (config.json) disagree with the semantic-ID table's "
            f"{table.codebook_sizes}"
        )
    if config.vocab_size != len(tokenizer):
        problems.append(f"vocab_size {config.vocab_size} (config.json) disagrees with the tokenizer's {len(tokenizer)} tokens")
    if getattr(config, "level_offsets", None) is not None and list(config.level_offsets) != list(tokenizer.level_offsets):
        problems.append(
            f"level_offsets {list(config.level_offsets)} (config.json) disagree with the tokenizer's {list(tokenizer.level_offsets)}"
        )
    if config.pad_token_id != tokenizer.pad_token_id:
        problems.append(f"pad_token_id {config.pad_token_id} (config.json) disagrees with the tokenizer's {tokenizer.pad_token_id}")
    if problems:
        raise CheckpointMismatchError("; ".join(problems))


def _dataset_for(recipe: dict, dataset: str | None, data_dir: str | None) -> RecDataset:
    name = dataset or recipe.get("dataset")
    if not name:
        raise DataFormatError("the model folder has no recipe.yaml: pass --dataset")
    return load_rec_dataset(name, data_dir if data_dir is not None else recipe.get("data_dir"))


def evaluate_saved_model(
    model_dir: str | os.PathLike,
    split: str = "test",
    dataset: str | None = None,
    data_dir: str | None = None,
    num_beams: int | None = None,
    batch_size: int = 256,
    max_users: int | None = None,
    scratch_dir: str = ".",
) -> dict:
    from .families import eval_collator_for

    model, tokenizer, recipe = load_saved_model(model_dir)
    rec_dataset = _dataset_for(recipe, dataset, data_dir)
    max_history = int(recipe.get("max_history", 20))
    rows = rec_dataset.splits(max_history)[split]
    if max_users:
        rows = rows.select(range(min(max_users, len(rows))))
    ks = list(recipe.get("metric_ks", [5, 10] if rec_dataset.protocol == "leave-one-out" else [5, 10, 20]))
    args = GenRecTrainingArguments(
        output_dir=scratch_dir,
        per_device_eval_batch_size=batch_size,
        generation_num_beams=num_beams or int(recipe.get("generation_num_beams", 20)),
        metric_ks=ks,
        report_to="none",
        use_cpu=not _cuda_available(),
    )
    trainer = GenRecTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        id_tables=build_id_tables(tokenizer.semantic_id_table),
        item_ids=tokenizer.semantic_id_table.item_ids,
        eval_collator=eval_collator_for(model, tokenizer, rec_dataset, recipe),
    )
    metrics = trainer.evaluate(rows, metric_key_prefix=split)
    result = {k[len(split) + 1 :]: v for k, v in metrics.items() if k.startswith(split + "_")}
    record = {
        "model": str(model_dir),
        **result,
        "rows_per_process": trainer.rows_per_process,
        "protocol": rec_dataset.describe_protocol(max_history),
    }
    if not max_users and trainer.is_world_process_zero():
        write_eval_results(Path(model_dir), rec_dataset, split, result, max_history, args)
    return {**record, "dataset": rec_dataset.name, "split": split}


def recommend_with_saved_model(
    model_dir: str | os.PathLike,
    history: list[int],
    top_k: int = 10,
    num_beams: int = 20,
    user_id: int | None = None,
    dataset: str | None = None,
    data_dir: str | None = None,
) -> dict:
    model, tokenizer, recipe = load_saved_model(model_dir)
    try:
        catalogue = _dataset_for(recipe, dataset, data_dir).catalogue
    except DataFormatError:
        catalogue = None  # titles are a convenience; recommendations do not need the data
    ranked = recommend(model, tokenizer, [history], k=top_k, num_beams=num_beams,
                       user_ids=[user_id] if user_id is not None else None)[0]
    items = [
        {"item_id": item, "score": score, **({"title": catalogue.title(item)} if catalogue and item in catalogue else {})}
        for item, score in ranked
    ]
    return {"history": history, "recommendations": items}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
