"""OPQ item tokenizer: long, unordered semantic IDs (one code per sub-space of a rotated embedding).

Optimized product quantization (Ge et al., 2013), as RPG (Hou et al., 2025) builds its IDs: the
standardised embedding is rotated by an orthogonal matrix, cut into ``num_digits`` equal
sub-spaces, and each sub-space is quantised by its own k-means of ``codebook_size`` codes; the
rotation and the codebooks are refined alternately (k-means, then orthogonal Procrustes).  The
digits are independent of each other — no digit refines another, unlike residual quantisation — so
a model can predict them in parallel.  A dimension count not divisible by ``num_digits`` is padded
with zero dimensions.  Saved as safetensors (rotation, centroids, statistics) + JSON config +
``semantic_ids.json``; loading never unpickles.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import CheckpointMismatchError, ConfigError, DataFormatError, InvalidInputError
from ..io_utils import atomic_save_tensors, atomic_write_json, read_json
from ..semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable
from .kmeans import kmeans, nearest_centroid
from .standardize import config_from_dict, embedding_matrix, standardization

CONFIG_FILE = "opq_config.json"
WEIGHTS_FILE = "opq.safetensors"
FORMAT = "hf_genrec.opq/1"
METHOD = "opq"


@dataclass
class OPQConfig:
    """``num_digits`` sub-spaces of ``codebook_size`` codes; ``rotation_iters`` rounds of k-means + Procrustes."""

    num_digits: int = 32
    codebook_size: int = 256
    rotation_iters: int = 20
    kmeans_iters: int = 10
    final_kmeans_iters: int = 30
    standardize_inputs: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        if self.num_digits < 1 or self.codebook_size < 2 or self.rotation_iters < 0 or self.kmeans_iters < 0:
            raise ConfigError(f"OPQConfig needs num_digits >= 1, codebook_size >= 2, iteration counts >= 0; got {self}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: object = "<dict>") -> "OPQConfig":
        return config_from_dict(cls, data, source, "OPQ")


class OPQTokenizer:
    """Fit with :meth:`fit`; map embeddings to digits ``[N, num_digits]`` with :meth:`encode_codes`."""

    def __init__(self, config: OPQConfig | None = None) -> None:
        self.config = config or OPQConfig()
        self.rotation: torch.Tensor | None = None  # [D', D'] (D' = D padded to a multiple of num_digits)
        self.centroids: torch.Tensor | None = None  # [num_digits, codebook_size, D' / num_digits]
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.semantic_id_table: SemanticIdTable | None = None

    # ------------------------------------------------------------------ inputs
    def _prepare(self, embeddings: Any) -> torch.Tensor:
        """Standardised, zero-padded to a multiple of ``num_digits`` dimensions, float64."""
        x = embedding_matrix(embeddings, None if self.mean is None else int(self.mean.shape[0]))
        if self.config.standardize_inputs:
            x = (x - self.mean) / self.std
        pad = (-x.shape[1]) % self.config.num_digits
        return torch.nn.functional.pad(x, (0, pad)).double()

    # ------------------------------------------------------------------ fitting
    def fit(self, embeddings: Any) -> "OPQTokenizer":
        cfg = self.config
        self.mean = self.std = self.rotation = self.centroids = None
        self.mean, self.std = standardization(embedding_matrix(embeddings))
        x = self._prepare(embeddings)
        dim = x.shape[1]
        sub = dim // cfg.num_digits
        generator = torch.Generator().manual_seed(cfg.seed)
        # a random orthogonal start spreads the variance of the leading dimensions over the sub-spaces
        rotation = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))[0]
        if cfg.rotation_iters == 0:
            rotation = torch.eye(dim, dtype=torch.float64)
        centroids: list[torch.Tensor | None] = [None] * cfg.num_digits
        for round_ in range(cfg.rotation_iters + 1):
            last = round_ == cfg.rotation_iters
            z = (x @ rotation).float()
            reconstruction = torch.empty_like(z)
            for digit in range(cfg.num_digits):
                part = z[:, digit * sub : (digit + 1) * sub]
                centroids[digit], assign = kmeans(
                    part, cfg.codebook_size, cfg.final_kmeans_iters if last else cfg.kmeans_iters, generator,
                    init_method="random", initial_centroids=centroids[digit],
                )
                reconstruction[:, digit * sub : (digit + 1) * sub] = centroids[digit][assign]
            if last:
                break
            # orthogonal Procrustes: the rotation that best maps x onto its reconstruction
            u, _, vt = torch.linalg.svd(x.T @ reconstruction.double())
            rotation = u @ vt
        self.rotation = rotation.float()
        self.centroids = torch.stack(centroids)  # type: ignore[arg-type]
        return self

    @torch.no_grad()
    def encode_codes(self, embeddings: Any) -> torch.LongTensor:
        """Digits ``[N, num_digits]``: the nearest code of every sub-space of the rotated embedding."""
        if self.centroids is None:
            raise InvalidInputError("the OPQ tokenizer is not fit yet (call fit or from_pretrained)")
        z = (self._prepare(embeddings).float() @ self.rotation)
        sub = self.centroids.shape[-1]
        return torch.stack(
            [nearest_centroid(z[:, d * sub : (d + 1) * sub], self.centroids[d]) for d in range(self.config.num_digits)], dim=-1
        )

    def reconstruction_error(self, embeddings: Any) -> float:
        """Relative squared error of the quantised (standardised, rotated) embeddings."""
        z = (self._prepare(embeddings).float() @ self.rotation)
        codes = self.encode_codes(embeddings)
        rebuilt = torch.cat([self.centroids[d][codes[:, d]] for d in range(self.config.num_digits)], dim=1)
        return float(((z - rebuilt) ** 2).sum() / (z**2).sum().clamp_min(1e-12))

    def build_table(self, item_ids: Sequence[int], embeddings: Any) -> SemanticIdTable:
        """Semantic-ID table (the digits + a disambiguation level for the rare identical codes), attached here."""
        codes = self.encode_codes(embeddings).numpy()
        if len(item_ids) != len(codes):
            raise InvalidInputError(f"{len(item_ids)} item ids for {len(codes)} embeddings")
        self.semantic_id_table = SemanticIdTable.from_content_codes(item_ids, codes, self.config.codebook_size, method=METHOD)
        return self.semantic_id_table

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        if self.centroids is None:
            raise InvalidInputError("cannot save an OPQ tokenizer that is not fit")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_save_tensors(
            directory / WEIGHTS_FILE,
            {"rotation": self.rotation, "centroids": self.centroids, "input_mean": self.mean, "input_std": self.std},
            metadata={"format": FORMAT},
        )
        atomic_write_json(directory / CONFIG_FILE, {"format": FORMAT, "input_dim": int(self.mean.shape[0]), **asdict(self.config)}, indent=2)
        if self.semantic_id_table is not None:
            self.semantic_id_table.save(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "OPQTokenizer":
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        tokenizer = cls(OPQConfig.from_dict(read_json(config_path, "OPQ config"), source=config_path))
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise DataFormatError("OPQ weights not found", path=weights_path)
        tensors = load_file(str(weights_path))
        missing = {"rotation", "centroids", "input_mean", "input_std"} - set(tensors)
        if missing:
            raise DataFormatError(f"lacks tensors {sorted(missing)}", path=weights_path)
        expected = (tokenizer.config.num_digits, tokenizer.config.codebook_size)
        if tuple(tensors["centroids"].shape[:2]) != expected:
            raise CheckpointMismatchError(f"{weights_path}: centroids of shape {tuple(tensors['centroids'].shape)} for a config of {expected}")
        tokenizer.rotation, tokenizer.centroids = tensors["rotation"], tensors["centroids"]
        tokenizer.mean, tokenizer.std = tensors["input_mean"], tensors["input_std"]
        if (directory / SEMANTIC_ID_FILE).is_file():
            tokenizer.semantic_id_table = SemanticIdTable.load(directory)
        return tokenizer


__all__ = ["METHOD", "OPQConfig", "OPQTokenizer"]
