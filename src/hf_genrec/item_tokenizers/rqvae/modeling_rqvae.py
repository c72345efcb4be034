"""RQ-VAE item tokenizer: item embedding -> ``num_levels`` residual codes (TIGER, Rajput et al. 2023).

The model is a plain ``PreTrainedModel`` so that it saves, loads and shares like any transformers
model.  Besides the TIGER recipe (MLP encoder/decoder, residual quantisation, straight-through
gradients, commitment loss, k-means codebook init on the first batch) it standardises its inputs
with statistics stored in the weights and restarts dead codes, the two fixes that keep codebooks
from collapsing on unit-norm sentence embeddings.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...errors import CheckpointMismatchError, InvalidInputError
from ...semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable
from ..kmeans import kmeans, nearest_centroid
from ..standardize import standardization
from .configuration_rqvae import RQVAETokenizerConfig

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


# ---------------------------------------------------------------------------------------------- modules
@dataclass
class RQVAETokenizerOutput(ModelOutput):
    """Output of :class:`RQVAETokenizerModel`.

    Args:
        loss: reconstruction_loss + quantization_loss (present whenever the forward ran).
        reconstruction_loss: squared error between standardised input and reconstruction.
        quantization_loss: codebook + beta * commitment terms, summed over levels.
        codes: ``[B, num_levels]`` code of each level.
        reconstructions: ``[B, input_dim]`` decoded embeddings, in the input (unstandardised) space.
        loss_components: the two loss terms by name (``reconstruction``, ``quantization``), for trainers that log each one.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    quantization_loss: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    reconstructions: torch.FloatTensor | None = None
    loss_components: dict[str, torch.Tensor] | None = None


class RQVAEMLP(nn.Module):
    """Linear layers with an activation (and optional dropout) between them, none after the last."""

    def __init__(self, dims: list[int], activation: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(dims) - 2:
                layers.append(_ACTIVATIONS[activation]())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class RQVAECodebook(nn.Module):
    """One level's code vectors, ``weight [codebook_size, latent_dim]``."""

    def __init__(self, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(codebook_size, dim))

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        """Nearest code of each residual."""
        return nearest_centroid(residual, self.weight.detach())


def rotate_onto(z: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rotation trick (Fifty et al., 2024): equals ``target`` in value, but gradients reach ``z``
    through a fixed rotation + rescaling instead of the identity of the straight-through estimator."""
    z_norm = z.norm(dim=-1, keepdim=True).clamp_min(eps)
    t_norm = target.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = (z / z_norm).detach()
    q = (target / t_norm).detach()
    w = F.normalize(u + q, dim=-1, eps=eps).detach()
    rotated = z - 2.0 * w * (w * z).sum(-1, keepdim=True) + 2.0 * q * (u * z).sum(-1, keepdim=True)
    return (t_norm / z_norm).detach() * rotated


class RQVAEResidualQuantizer(nn.Module):
    """``num_levels`` codebooks, each quantising what the previous levels left unexplained."""

    def __init__(self, config: RQVAETokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.codebooks = nn.ModuleList(
            [RQVAECodebook(config.codebook_size, config.latent_dim) for _ in range(config.num_levels)]
        )
        # saved with the weights: a reloaded model must not be k-means initialised again
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        # training-only bookkeeping of dead-code restart: steps since each code was last chosen
        self.register_buffer(
            "code_age", torch.zeros(config.num_levels, config.codebook_size, dtype=torch.long), persistent=False
        )

    @torch.no_grad()
    def initialize_from(self, latents: torch.Tensor) -> None:
        """k-means initialisation of every level on ``latents`` (TIGER: the first training batch)."""
        generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,))))
        residual = latents.detach().float()
        for codebook in self.codebooks:
            centroids, assign = kmeans(residual, self.config.codebook_size, self.config.kmeans_iters, generator)
            codebook.weight.data.copy_(centroids)
            residual = residual - centroids[assign]
        self.initialized.fill_(True)
        self.code_age.zero_()

    def assign(self, latents: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, num_levels]`` of latents, without losses or restarts."""
        residual = latents
        codes = []
        for codebook in self.codebooks:
            idx = codebook(residual)
            residual = residual - codebook.weight[idx]
            codes.append(idx)
        return torch.stack(codes, dim=-1)

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(quantised latents with gradient path, codes [B, L], quantisation loss)``."""
        residual = latents
        quantized = torch.zeros_like(latents)
        loss = latents.new_zeros(())
        codes = []
        for level, codebook in enumerate(self.codebooks):
            idx = codebook(residual.detach())
            code_vectors = codebook.weight[idx]
            codebook_term = (residual.detach() - code_vectors).pow(2).sum(-1).mean()
            commitment_term = (residual - code_vectors.detach()).pow(2).sum(-1).mean()
            loss = loss + codebook_term + self.config.beta * commitment_term
            if self.training and self.config.dead_code_window > 0:
                self._restart_dead_codes(level, idx, residual.detach())
            quantized = quantized + code_vectors
            residual = residual - code_vectors.detach()
            codes.append(idx)
        if self.config.rotation_trick:
            quantized_st = rotate_onto(latents, quantized)
        else:
            quantized_st = latents + (quantized - latents).detach()
        return quantized_st, torch.stack(codes, dim=-1), loss

    @torch.no_grad()
    def _restart_dead_codes(self, level: int, idx: torch.Tensor, residual: torch.Tensor) -> None:
        """Re-seed codes unused for ``dead_code_window`` steps with residuals of this batch."""
        age = self.code_age[level]
        used = torch.zeros_like(age, dtype=torch.bool)
        used[idx] = True
        age.add_(1).masked_fill_(used, 0)
        dead = (age >= self.config.dead_code_window).nonzero().flatten()
        if dead.numel() == 0:
            return
        rows = torch.randperm(residual.shape[0], device=residual.device)
        if rows.numel() < dead.numel():
            rows = rows.repeat(math.ceil(dead.numel() / rows.numel()))
        self.codebooks[level].weight.data[dead] = residual[rows[: dead.numel()]].to(self.codebooks[level].weight.dtype)
        age[dead] = 0


# ---------------------------------------------------------------------------------------------- model
class RQVAETokenizerPreTrainedModel(PreTrainedModel):
    config_class = RQVAETokenizerConfig
    base_model_prefix = "rqvae"
    main_input_name = "embeddings"
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # Keyed on this file's leaf classes: outside the transformers namespace, the generic init
        # would give Linear layers std 0.02 (vanishing activations through a ReLU MLP).
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))  # torch's own Linear default
            if module.bias is not None:
                bound = 1.0 / math.sqrt(module.in_features)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, RQVAECodebook):
            bound = 1.0 / module.weight.shape[0]
            init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, RQVAEResidualQuantizer):
            init.zeros_(module.initialized)
            init.zeros_(module.code_age)
        elif isinstance(module, RQVAETokenizerModel):
            init.zeros_(module.input_mean)
            init.ones_(module.input_std)
            init.zeros_(module.input_stats_initialized)


class RQVAETokenizerModel(RQVAETokenizerPreTrainedModel):
    """Embeddings -> encoder MLP -> residual quantiser -> decoder MLP.

    ``semantic_id_table`` (a :class:`~hf_genrec.semantic_ids.SemanticIdTable`, optional) travels with
    the model: ``save_pretrained`` writes it as ``semantic_ids.json`` and ``from_pretrained`` reads it.
    """

    def __init__(self, config: RQVAETokenizerConfig) -> None:
        super().__init__(config)
        encoder_dims = [config.input_dim, *config.hidden_dims, config.latent_dim]
        self.encoder = RQVAEMLP(encoder_dims, config.activation, config.dropout)
        self.quantizer = RQVAEResidualQuantizer(config)
        self.decoder = RQVAEMLP(encoder_dims[::-1], config.activation, config.dropout)
        self.register_buffer("input_mean", torch.zeros(config.input_dim))
        self.register_buffer("input_std", torch.ones(config.input_dim))
        self.register_buffer("input_stats_initialized", torch.zeros((), dtype=torch.bool))
        self.semantic_id_table: SemanticIdTable | None = None
        self.post_init()

    # ------------------------------------------------------------------ inputs
    def _check_embeddings(self, embeddings: Any) -> torch.Tensor:
        if isinstance(embeddings, np.ndarray):
            embeddings = torch.from_numpy(embeddings)
        if not isinstance(embeddings, torch.Tensor):
            raise InvalidInputError(f"embeddings must be a tensor or array, got {type(embeddings).__name__}")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.config.input_dim:
            raise InvalidInputError(
                f"embeddings must have shape [N, {self.config.input_dim}] (config.input_dim), got {tuple(embeddings.shape)}"
            )
        if not torch.is_floating_point(embeddings):
            embeddings = embeddings.float()
        if not bool(torch.isfinite(embeddings).all()):
            raise InvalidInputError("embeddings contain NaN or infinite values")
        return embeddings.to(device=self.input_mean.device, dtype=self.input_mean.dtype)

    @torch.no_grad()
    def set_input_statistics(self, embeddings: Any) -> None:
        """Store per-dimension mean/std of the training embeddings (saved with the weights)."""
        x = self._check_embeddings(embeddings)
        if x.shape[0] < 2:
            raise InvalidInputError("input statistics need at least 2 embeddings")
        mean, std = standardization(x)
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)
        self.input_stats_initialized.fill_(True)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.standardize_inputs:
            return x
        return (x - self.input_mean) / self.input_std

    # ------------------------------------------------------------------ forward
    def forward(self, embeddings: torch.Tensor, return_dict: bool | None = None) -> RQVAETokenizerOutput | tuple:
        x = self._check_embeddings(embeddings)
        if self.training and self.config.standardize_inputs and not bool(self.input_stats_initialized):
            self.set_input_statistics(x)  # fallback: statistics of the first batch
        x_std = self.standardize(x)
        latents = self.encoder(x_std)
        if self.training and not bool(self.quantizer.initialized):
            self.quantizer.initialize_from(latents)
        quantized, codes, quantization_loss = self.quantizer(latents)
        decoded = self.decoder(quantized)
        squared_error = (decoded - x_std).pow(2)
        if self.config.reconstruction_reduction == "sum":
            reconstruction_loss = squared_error.sum(-1).mean()
        else:
            reconstruction_loss = squared_error.mean()
        loss = reconstruction_loss + quantization_loss
        reconstructions = decoded * self.input_std + self.input_mean if self.config.standardize_inputs else decoded
        output = RQVAETokenizerOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            quantization_loss=quantization_loss,
            codes=codes,
            reconstructions=reconstructions,
            loss_components={
                "reconstruction": reconstruction_loss.detach(),
                "quantization": quantization_loss.detach(),
            },
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def encode_codes(self, embeddings: Any, batch_size: int = 8192) -> torch.LongTensor:
        """Content codes ``[N, num_levels]`` of embeddings (inference; the model's mode is restored)."""
        x = self._check_embeddings(embeddings)
        was_training = self.training
        self.eval()
        try:
            codes = [self.quantizer.assign(self.encoder(self.standardize(chunk))) for chunk in x.split(batch_size)]
        finally:
            self.train(was_training)
        if not codes:
            return torch.zeros((0, self.config.num_levels), dtype=torch.long)
        return torch.cat(codes).cpu()

    @torch.no_grad()
    def decode_codes(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Embeddings reconstructed from content codes ``[N, num_levels]`` (input space)."""
        codes = torch.as_tensor(codes, dtype=torch.long, device=self.input_mean.device)
        if codes.ndim != 2 or codes.shape[1] != self.config.num_levels:
            raise InvalidInputError(f"codes must have shape [N, {self.config.num_levels}], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size):
            raise InvalidInputError(f"codes must lie in [0, {self.config.codebook_size})")
        latents = sum(cb.weight[codes[:, level]] for level, cb in enumerate(self.quantizer.codebooks))
        decoded = self.decoder(latents)
        return decoded * self.input_std + self.input_mean if self.config.standardize_inputs else decoded

    # ------------------------------------------------------------------ semantic-ID table
    def check_semantic_id_table(self, table: SemanticIdTable) -> None:
        """Raise CheckpointMismatchError unless ``table``'s content levels match this tokenizer."""
        expected = [self.config.codebook_size] * self.config.num_levels
        if table.content_levels != self.config.num_levels or table.codebook_sizes[: table.content_levels] != expected:
            raise CheckpointMismatchError(
                f"semantic-ID table has {table.content_levels} content levels of sizes "
                f"{table.codebook_sizes[: table.content_levels]}, the RQ-VAE produces {expected}"
            )

    def save_pretrained(self, save_directory: str | os.PathLike, *args, push_to_hub: bool = False, **kwargs):
        """``PreTrainedModel.save_pretrained`` plus ``semantic_ids.json`` when a table is attached."""
        if self.semantic_id_table is not None:
            self.check_semantic_id_table(self.semantic_id_table)
        result = super().save_pretrained(save_directory, *args, push_to_hub=False, **kwargs)
        if self.semantic_id_table is not None and kwargs.get("is_main_process", True):
            self.semantic_id_table.save(save_directory)
        if push_to_hub:
            self.push_to_hub(kwargs.get("repo_id", Path(save_directory).name), token=kwargs.get("token"))
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` plus the ``semantic_ids.json`` saved beside the weights, if any (never remote code)."""
        kwargs.pop("trust_remote_code", None)
        model = super().from_pretrained(pretrained_model_name_or_path, *args, trust_remote_code=False, **kwargs)
        if isinstance(model, tuple):  # output_loading_info=True
            return model
        table_path = _locate_optional_file(pretrained_model_name_or_path, SEMANTIC_ID_FILE, kwargs)
        if table_path is not None:
            table = SemanticIdTable.load(table_path)
            model.check_semantic_id_table(table)
            model.semantic_id_table = table
        return model


def _locate_optional_file(name_or_path: str | os.PathLike, filename: str, kwargs: dict) -> str | None:
    subfolder = kwargs.get("subfolder") or ""
    local = Path(name_or_path) / subfolder / filename
    if Path(name_or_path).is_dir():
        return str(local) if local.is_file() else None
    from transformers.utils import cached_file

    hub_kwargs = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only", "force_download") if k in kwargs}
    return cached_file(
        str(name_or_path),
        filename,
        subfolder=subfolder,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )


__all__ = [
    "RQVAETokenizerModel",
    "RQVAETokenizerOutput",
    "RQVAETokenizerPreTrainedModel",
    "rotate_onto",
]
