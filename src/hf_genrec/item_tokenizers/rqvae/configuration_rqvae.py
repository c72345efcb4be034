"""Configuration of the RQ-VAE item tokenizer (TIGER's semantic-ID encoder)."""

from __future__ import annotations

from typing import Sequence

from transformers import PretrainedConfig

from ...errors import ConfigError
from ...remote_code import RemoteCodeConfigMixin

_ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
_REDUCTIONS = ("sum", "mean")


class RQVAETokenizerConfig(RemoteCodeConfigMixin, PretrainedConfig):
    """Hyper-parameters of an MLP RQ-VAE that turns item embeddings into ``num_levels`` codes.

    Args:
        input_dim: width of the item embeddings (384 for all-MiniLM-L6-v2, 768 for Sentence-T5).
        hidden_dims: encoder widths between input and latent; the decoder mirrors them.
        latent_dim: width of the quantised latent.
        num_levels: residual quantisation levels (codes per item before disambiguation).
        codebook_size: codes per level.
        beta: weight of the commitment term ``||r - sg(e)||^2``.
        activation: non-linearity of the MLPs.
        dropout: dropout after each hidden activation (0 disables).
        rotation_trick: pass gradients through the quantiser with the rotation trick
            (Fifty et al., 2024) instead of the plain straight-through estimator.
        dead_code_window: a code unused for this many consecutive training steps is re-seeded from a
            residual of the current batch (0 disables the restart).
        standardize_inputs: standardise each input dimension with mean/std stored in the weights;
            unit-norm sentence embeddings otherwise collapse onto few codes.
        reconstruction_reduction: ``"sum"`` over dimensions (TIGER's squared norm) or ``"mean"``.
        kmeans_iters: Lloyd iterations of the k-means that initialises the codebooks on the first batch.
    """

    model_type = "rqvae_tokenizer"
    # Saved checkpoints carry these files, so they load with trust_remote_code=True without hf_genrec.
    remote_auto_map = {
        "AutoConfig": "configuration_rqvae.RQVAETokenizerConfig",
        "AutoModel": "modeling_rqvae.RQVAETokenizerModel",
    }

    def __init__(
        self,
        input_dim: int = 384,
        hidden_dims: Sequence[int] = (512, 256, 128),
        latent_dim: int = 32,
        num_levels: int = 3,
        codebook_size: int = 256,
        beta: float = 0.25,
        activation: str = "relu",
        dropout: float = 0.0,
        rotation_trick: bool = False,
        dead_code_window: int = 20,
        standardize_inputs: bool = True,
        reconstruction_reduction: str = "sum",
        kmeans_iters: int = 20,
        **kwargs,
    ) -> None:
        self.input_dim = int(input_dim)
        self.hidden_dims = [int(h) for h in hidden_dims]
        self.latent_dim = int(latent_dim)
        self.num_levels = int(num_levels)
        self.codebook_size = int(codebook_size)
        self.beta = float(beta)
        self.activation = activation
        self.dropout = float(dropout)
        self.rotation_trick = bool(rotation_trick)
        self.dead_code_window = int(dead_code_window)
        self.standardize_inputs = bool(standardize_inputs)
        self.reconstruction_reduction = reconstruction_reduction
        self.kmeans_iters = int(kmeans_iters)
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        positive = {
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "num_levels": self.num_levels,
            "codebook_size": self.codebook_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"RQVAETokenizerConfig.{name} must be >= 1, got {value}")
        if any(h < 1 for h in self.hidden_dims):
            raise ConfigError(f"RQVAETokenizerConfig.hidden_dims must be positive, got {self.hidden_dims}")
        if self.beta < 0:
            raise ConfigError(f"RQVAETokenizerConfig.beta must be >= 0, got {self.beta}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"RQVAETokenizerConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in _ACTIVATIONS:
            raise ConfigError(f"RQVAETokenizerConfig.activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        if self.reconstruction_reduction not in _REDUCTIONS:
            raise ConfigError(
                f"RQVAETokenizerConfig.reconstruction_reduction must be one of {_REDUCTIONS}, "
                f"got {self.reconstruction_reduction!r}"
            )
        if self.dead_code_window < 0 or self.kmeans_iters < 0:
            raise ConfigError("RQVAETokenizerConfig.dead_code_window and kmeans_iters must be >= 0")


__all__ = ["RQVAETokenizerConfig"]
