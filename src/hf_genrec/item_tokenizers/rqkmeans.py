"""RQ-KMeans item tokenizer: residual k-means on standardised embeddings, no training (as in GRID).

Level ``l`` clusters what levels ``0..l-1`` left unexplained; an item's ID is its cluster at each
level, plus the disambiguation level of :class:`SemanticIdTable`.  Saved as safetensors (centroids,
standardisation statistics) + a JSON config + ``semantic_ids.json``; loading never unpickles.
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

CONFIG_FILE = "rqkmeans_config.json"
WEIGHTS_FILE = "rqkmeans.safetensors"
FORMAT = "hf_genrec.rqkmeans/1"


@dataclass
class RQKMeansConfig:
    """Residual k-means settings: ``num_levels`` x ``codebook_size`` clusters, seeded and deterministic."""

    num_levels: int = 3
    codebook_size: int = 256
    num_iters: int = 20
    init: str = "kmeans++"
    standardize_inputs: bool = True
    seed: int = 42
    max_points_per_centroid: int = 256  # each level is fit on at most this many points a centroid (0: all)

    def __post_init__(self) -> None:
        if self.num_levels < 1 or self.codebook_size < 1 or self.num_iters < 0 or self.max_points_per_centroid < 0:
            raise ConfigError(
                f"RQKMeansConfig needs num_levels >= 1, codebook_size >= 1, num_iters >= 0, "
                f"max_points_per_centroid >= 0; got {self}"
            )
        if self.init not in ("kmeans++", "random"):
            raise ConfigError(f"RQKMeansConfig.init must be 'kmeans++' or 'random', got {self.init!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: object = "<dict>") -> "RQKMeansConfig":
        return config_from_dict(cls, data, source, "RQ-KMeans")


class RQKMeansTokenizer:
    """Fit with :meth:`fit`, map embeddings to content codes with :meth:`encode_codes`."""

    def __init__(self, config: RQKMeansConfig | None = None) -> None:
        self.config = config or RQKMeansConfig()
        self.centroids: torch.Tensor | None = None  # [num_levels, codebook_size, D]
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.semantic_id_table: SemanticIdTable | None = None

    # ------------------------------------------------------------------ fitting
    def _check(self, embeddings: Any) -> torch.Tensor:
        return embedding_matrix(embeddings, None if self.centroids is None else int(self.centroids.shape[-1]))

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.config.standardize_inputs else x

    def fit(self, embeddings: Any) -> "RQKMeansTokenizer":
        """Fit every level's centroids on the residuals of the previous levels."""
        self.centroids = None
        x = self._check(embeddings)
        self.mean, self.std = standardization(x)
        residual = self._own_copy(self._standardize(x), x)
        generator = torch.Generator().manual_seed(self.config.seed)
        per_centroid = self.config.max_points_per_centroid
        max_points = per_centroid * self.config.codebook_size if per_centroid else None
        levels = []
        for _ in range(self.config.num_levels):
            centroids, assign = kmeans(
                residual, self.config.codebook_size, self.config.num_iters, generator, self.config.init, max_points
            )
            levels.append(centroids)
            _subtract_assigned(residual, centroids, assign)
        self.centroids = torch.stack(levels)
        return self

    @staticmethod
    def _own_copy(residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A tensor the levels may update in place (never the caller's embeddings)."""
        return residual.clone() if residual.data_ptr() == x.data_ptr() else residual

    @torch.no_grad()
    def encode_codes(self, embeddings: Any) -> torch.LongTensor:
        """Content codes ``[N, num_levels]``."""
        if self.centroids is None:
            raise InvalidInputError("the RQ-KMeans tokenizer is not fit yet (call fit or from_pretrained)")
        x = self._check(embeddings)
        residual = self._own_copy(self._standardize(x), x)
        codes = []
        for centroids in self.centroids:
            idx = nearest_centroid(residual, centroids)
            _subtract_assigned(residual, centroids, idx)
            codes.append(idx)
        return torch.stack(codes, dim=-1)

    def build_table(self, item_ids: Sequence[int], embeddings: Any) -> SemanticIdTable:
        """Semantic-ID table (content codes + disambiguation level), also attached to the tokenizer."""
        codes = self.encode_codes(embeddings).numpy()
        if len(item_ids) != len(codes):
            raise InvalidInputError(f"{len(item_ids)} item ids for {len(codes)} embeddings")
        self.semantic_id_table = SemanticIdTable.from_content_codes(
            item_ids, codes, self.config.codebook_size, method="rqkmeans"
        )
        return self.semantic_id_table

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        if self.centroids is None:
            raise InvalidInputError("cannot save an RQ-KMeans tokenizer that is not fit")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_save_tensors(
            directory / WEIGHTS_FILE,
            {"centroids": self.centroids, "input_mean": self.mean, "input_std": self.std},
            metadata={"format": FORMAT},
        )
        atomic_write_json(
            directory / CONFIG_FILE,
            {"format": FORMAT, "input_dim": int(self.centroids.shape[-1]), **asdict(self.config)},
            indent=2,
        )
        if self.semantic_id_table is not None:
            self.semantic_id_table.save(directory)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "RQKMeansTokenizer":
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        data = read_json(config_path, "RQ-KMeans config")
        tokenizer = cls(RQKMeansConfig.from_dict(data, source=config_path))
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise DataFormatError("RQ-KMeans centroids not found", path=weights_path)
        tensors = load_file(str(weights_path))
        missing = {"centroids", "input_mean", "input_std"} - set(tensors)
        if missing:
            raise DataFormatError(f"lacks tensors {sorted(missing)}", path=weights_path)
        expected = (tokenizer.config.num_levels, tokenizer.config.codebook_size)
        if tuple(tensors["centroids"].shape[:2]) != expected:
            raise CheckpointMismatchError(
                f"{weights_path}: centroids of shape {tuple(tensors['centroids'].shape)} for a config of {expected}"
            )
        tokenizer.centroids, tokenizer.mean, tokenizer.std = tensors["centroids"], tensors["input_mean"], tensors["input_std"]
        if (directory / SEMANTIC_ID_FILE).is_file():
            table = SemanticIdTable.load(directory)
            if table.content_levels != tokenizer.config.num_levels:
                raise CheckpointMismatchError(
                    f"{directory}: semantic-ID table has {table.content_levels} content levels, the tokenizer {tokenizer.config.num_levels}"
                )
            tokenizer.semantic_id_table = table
        return tokenizer


def _subtract_assigned(residual: torch.Tensor, centroids: torch.Tensor, assign: torch.Tensor, chunk: int = 65536) -> None:
    """``residual -= centroids[assign]`` in place and in chunks: no second [N, D] copy of a large catalogue."""
    for rows, index in zip(residual.split(chunk), assign.split(chunk)):
        rows.sub_(centroids[index])


def rqkmeans_semantic_ids(
    item_ids: Sequence[int], embeddings: Any, config: RQKMeansConfig | None = None
) -> SemanticIdTable:
    """One call: fit residual k-means on ``embeddings`` and return the items' semantic-ID table."""
    tokenizer = RQKMeansTokenizer(config).fit(embeddings)
    return tokenizer.build_table(item_ids, embeddings)


__all__ = ["RQKMeansConfig", "RQKMeansTokenizer", "rqkmeans_semantic_ids"]
