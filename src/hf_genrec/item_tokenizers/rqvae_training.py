"""Training an RQ-VAE item tokenizer with ``transformers.Trainer`` on a catalogue's embeddings."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
from transformers import TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..recipes.item_tokenizer_recipe import ItemTokenizerRecipe
from ..semantic_ids.id_table import SemanticIdTable
from ..output_folders import OwnCheckpointsMixin
from ..trainer_utils import LossComponentsMixin, PrecisionSwitchingTrainer, StderrLogCallback
from .rqvae import RQVAETokenizerConfig, RQVAETokenizerModel

logger = logging.getLogger(__name__)


class EmbeddingDataset(torch.utils.data.Dataset):
    """Rows ``{"embeddings": FloatTensor[D]}`` of an embedding matrix, for Trainer."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        self.embeddings = embeddings

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"embeddings": self.embeddings[index]}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        # one gather per batch instead of one indexing call per row
        return [{"embeddings": row} for row in self.embeddings[torch.as_tensor(indices)].unbind(0)]


def collate_embeddings(features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {"embeddings": torch.stack([f["embeddings"] for f in features])}


def code_statistics(item_ids: Sequence[int], content_codes: np.ndarray, codebook_size: int) -> dict:
    """Stats of content codes (usage, entropy, collisions before disambiguation) via SemanticIdTable."""
    return SemanticIdTable.from_content_codes(item_ids, content_codes, codebook_size).stats()


class RQVAETrainer(OwnCheckpointsMixin, LossComponentsMixin, PrecisionSwitchingTrainer):
    """Trainer that logs the RQ-VAE's loss terms (``loss_reconstruction``, ``loss_quantization``) and, at
    each log step, the codebook quality of the whole catalogue (per-level usage and entropy, collision
    rate, largest collision group)."""

    def __init__(self, *args: Any, catalogue_embeddings: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remove_callback(PrinterCallback)
        self.remove_callback(ProgressCallback)
        self.add_callback(StderrLogCallback)
        self.catalogue_embeddings = catalogue_embeddings
        self.code_history: list[dict] = []

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.catalogue_embeddings is not None:
            logs.update(self.catalogue_code_logs())
        super().log(logs, start_time)

    def catalogue_code_logs(self) -> dict[str, float]:
        model = self.accelerator.unwrap_model(self.model)
        codes = model.encode_codes(self.catalogue_embeddings).numpy()
        stats = code_statistics(range(len(codes)), codes, model.config.codebook_size)
        logs: dict[str, float] = {
            "collision_rate": round(stats["collision_rate"], 4),
            "max_items_per_prefix": stats["max_items_per_prefix"],
        }
        for level, (usage, entropy) in enumerate(zip(stats["usage_per_level"], stats["entropy_per_level"])):
            logs[f"usage_level_{level}"] = round(usage, 4)
            logs[f"entropy_level_{level}"] = round(entropy, 3)
        self.code_history.append({"step": self.state.global_step, **logs})
        return logs


def train_rqvae_tokenizer(
    embeddings: torch.Tensor,
    item_ids: Sequence[int],
    recipe: ItemTokenizerRecipe,
    training_args: TrainingArguments,
) -> tuple[RQVAETokenizerModel, SemanticIdTable, dict]:
    """Train an RQ-VAE on ``embeddings`` and return it with its (attached) semantic-ID table."""
    set_seed(training_args.seed)
    config = RQVAETokenizerConfig(input_dim=int(embeddings.shape[1]), **recipe.model_config_kwargs())
    model = RQVAETokenizerModel(config)
    model.set_input_statistics(embeddings)  # statistics of the whole catalogue, not of one batch
    if len(embeddings) < config.codebook_size:
        logger.warning("%d items for %d codes a level: many codes will stay unused", len(embeddings), config.codebook_size)
    trainer = RQVAETrainer(
        model=model,
        args=training_args,
        train_dataset=EmbeddingDataset(embeddings),
        data_collator=collate_embeddings,
        catalogue_embeddings=embeddings,
    )
    train_output = trainer.train()
    model = trainer.accelerator.unwrap_model(trainer.model).cpu().eval()
    codes = model.encode_codes(embeddings).numpy()
    table = SemanticIdTable.from_content_codes(item_ids, codes, config.codebook_size, method="rqvae")
    model.semantic_id_table = table
    history = {
        "train_loss": float(train_output.training_loss),
        "train_steps": int(train_output.global_step),
        "log_history": trainer.state.log_history,
    }
    return model, table, history


__all__ = ["EmbeddingDataset", "RQVAETrainer", "code_statistics", "collate_embeddings", "train_rqvae_tokenizer"]
