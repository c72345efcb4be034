"""LoRA adaptation of an item text encoder on collaborative signal.

Why: a generic sentence encoder places items by wording; semantic IDs built on it group items that
*read* alike.  Pulling together the texts of items that follow each other in users' training
histories (contrastive pairs, in-batch negatives: ``MultipleNegativesRankingLoss``) makes the
embedding -- and so the IDs -- reflect what is bought together.  Only the training split is used.

Training is sentence-transformers' own ``SentenceTransformerTrainer``; LoRA is peft's
``get_peft_model(..., LoraConfig(task_type=FEATURE_EXTRACTION))`` on the encoder's inner
transformers model (``transformers``' own ``add_adapter`` needs peft >= 0.22 in this stack).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..recipes.item_encoder_recipe import ItemEncoderLoraArguments
from ..trainer_utils import StderrLogCallback
from .item_pairs import evaluate_pairs, next_item_pairs, pair_dataset, split_pairs
from .llm_encoder import DEFAULT_POOLING, is_plain_transformers_dir, load_llm_encoder
from .lora_adapters import add_lora_adapter, save_adapter, saved_pooling_mode_of, trainable_parameters
from .lora_base_models import check_hub_id, default_base_model_id
from .plain_encoder import default_encoder_path, load_plain_encoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments

logger = logging.getLogger(__name__)


def load_base_encoder(recipe: ItemEncoderLoraArguments, device: str | None = None) -> tuple["SentenceTransformer", str]:
    """The encoder to adapt and its kind: a plain transformers checkpoint gets Transformer + Pooling."""
    base = recipe.base_model if recipe.base_model is not None else default_encoder_path()
    if recipe.pooling is not None or is_plain_transformers_dir(base):
        model = load_llm_encoder(base, pooling=recipe.pooling or DEFAULT_POOLING, max_seq_length=recipe.max_seq_length, device=device)
        return model, "transformers"
    model = load_plain_encoder(base, device=device)
    model.max_seq_length = recipe.max_seq_length
    return model, "sentence-transformers"


def train_item_encoder_lora(
    recipe: ItemEncoderLoraArguments,
    training_args: "SentenceTransformerTrainingArguments",
    output_dir: str | os.PathLike | None = None,
    *,
    dataset: Any = None,
) -> tuple["SentenceTransformer", dict]:
    """Adapt the item encoder with LoRA on next-item pairs and save the adapter; returns the model
    and a JSON-able summary (pairs, steps, seconds, before/after measure on held-out pairs).

    ``dataset`` is a loaded ``RecDataset`` (default: ``load_rec_dataset(recipe.dataset, recipe.data_dir)``).
    """
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from ..data import load_rec_dataset

    start = time.perf_counter()
    output_dir = Path(output_dir if output_dir is not None else training_args.output_dir)
    base_model_id = recipe.base_model_id or default_base_model_id(recipe.base_model)
    if base_model_id is None:
        raise ConfigError(
            f"base model {recipe.base_model!r} is a local directory: pass base_model_id (--base-model-id) "
            "with its Hub id, which the adapter records instead of the path"
        )
    check_hub_id(base_model_id)
    if dataset is None:
        dataset = load_rec_dataset(recipe.dataset, data_dir=recipe.data_dir)
    catalogue = dataset.catalogue
    pairs = next_item_pairs(dataset.train_sequences(), recipe.pair_window)
    train_pairs, eval_pairs = split_pairs(pairs, recipe.eval_pairs, training_args.seed, recipe.max_train_pairs)
    logger.info("%d next-item pairs from training histories: %d train, %d held out", len(pairs), len(train_pairs), len(eval_pairs))

    set_seed(training_args.seed)
    device = "cpu" if training_args.use_cpu else None
    model, base_kind = load_base_encoder(recipe, device=device)
    add_lora_adapter(model, recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    measure = lambda: evaluate_pairs(  # noqa: E731 - the same measure before and after
        model, eval_pairs, catalogue.text, recipe.eval_top_k, recipe.eval_batch_size, training_args.seed
    )
    before = measure() if eval_pairs else None

    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=pair_dataset(train_pairs, catalogue.text),
        loss=MultipleNegativesRankingLoss(model),
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StderrLogCallback)
    t0 = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    after = measure() if eval_pairs else None

    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "base_model": str(recipe.base_model) if recipe.base_model is not None else "bundled:all-MiniLM-L6-v2",
        "base_model_id": base_model_id,
        "base_kind": base_kind,
        "pooling": saved_pooling_mode_of(model),
        "pairs": len(pairs),
        "train_pairs": len(train_pairs),
        "eval_pairs": len(eval_pairs),
        "steps": int(train_output.global_step),
        "train_loss": round(float(train_output.training_loss), 4),
        "trainable_parameters": trainable_parameters(model),
        "before": before,
        "after": after,
        "train_seconds": round(train_seconds, 2),
    }
    save_adapter(
        model, output_dir, base_model_id, base_kind,
        metadata={
            "dataset": dataset.name, "pairs": len(pairs), "train_steps": summary["steps"],
            "before": before, "after": after, "recipe": asdict(recipe),
        },
    )
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary["output"] = str(output_dir)
    return model, summary


__all__ = ["load_base_encoder", "train_item_encoder_lora"]
