"""Recipe fields of the T5-based families (TIGER, ColaRec): one T5 shape for both."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..recipes.genrec_recipe import FamilyRecipe, check_non_negative


@dataclass
class T5ShapeRecipe(FamilyRecipe):
    """The T5 encoder-decoder dimensions and the attention kernel used for training."""

    d_model: int = 128
    d_ff: int = 1024
    d_kv: int = 64
    num_heads: int = 6
    num_layers: int = 4
    num_decoder_layers: int = 4
    dropout_rate: float = 0.1
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "T5 attention kernel for training: eager, sdpa, or hf_genrec_eager (eager with cheap CPU dropout masks, fastest on CPU)"},
    )

    def __post_init__(self) -> None:
        check_non_negative(self, ("d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers"), minimum=1)
        check_non_negative(self, ("dropout_rate",))
        if self.dropout_rate >= 1:
            raise ConfigError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")

    def t5_shape(self) -> dict:
        """The T5 encoder-decoder dimensions both model families are configured with."""
        names = ("d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "dropout_rate")
        return {name: getattr(self, name) for name in names}


__all__ = ["T5ShapeRecipe"]
