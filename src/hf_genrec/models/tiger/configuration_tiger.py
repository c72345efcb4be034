"""TigerConfig: the TIGER generative retriever (a small T5 encoder-decoder over semantic-ID tokens).

Defaults follow the paper (Rajput et al., 2023): 4 + 4 layers, d_model 128, d_ff 1024, 6 heads of 64,
dropout 0.1.  The config also records the vocabulary layout the model needs to score one level at a
time: ``codebook_sizes`` and ``level_offsets`` (token id of code 0 of each level).  It carries the
attribute names ``transformers.T5Stack`` reads, so the stacks are built from it directly.
"""

from __future__ import annotations

from typing import Sequence

from transformers import PretrainedConfig

from ...errors import ConfigError
from ...remote_code import RemoteCodeConfigMixin


class TigerConfig(RemoteCodeConfigMixin, PretrainedConfig):
    model_type = "tiger"
    # Saved checkpoints carry these files, so they load with trust_remote_code=True without hf_genrec.
    remote_auto_map = {
        "AutoConfig": "configuration_tiger.TigerConfig",
        "AutoModel": "modeling_tiger.TigerForGenerativeRecommendation",
        "AutoModelForSeq2SeqLM": "modeling_tiger.TigerForGenerativeRecommendation",
    }
    keys_to_ignore_at_inference = ["cache"]
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }

    def __init__(
        self,
        vocab_size: int = 3030,
        codebook_sizes: Sequence[int] = (256, 256, 256, 4),
        level_offsets: Sequence[int] | None = None,
        d_model: int = 128,
        d_kv: int = 64,
        d_ff: int = 1024,
        num_layers: int = 4,
        num_decoder_layers: int | None = None,
        num_heads: int = 6,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        dropout_rate: float = 0.1,
        layer_norm_epsilon: float = 1e-6,
        initializer_factor: float = 1.0,
        feed_forward_proj: str = "relu",
        use_cache: bool = True,
        pad_token_id: int = 0,
        eos_token_id: int = 1,
        decoder_start_token_id: int = 0,
        tie_word_embeddings: bool = False,
        **kwargs,
    ) -> None:
        self.vocab_size = int(vocab_size)
        self.codebook_sizes = [int(k) for k in codebook_sizes]
        # Default layout: <pad>, </s>, <unk>, then the code blocks one after another (GenRecTokenizer's).
        if level_offsets is None:
            level_offsets, start = [], 3
            for size in self.codebook_sizes:
                level_offsets.append(start)
                start += size
        self.level_offsets = [int(o) for o in level_offsets]
        self.d_model = int(d_model)
        self.d_kv = int(d_kv)
        self.d_ff = int(d_ff)
        self.num_layers = int(num_layers)
        self.num_decoder_layers = int(num_decoder_layers) if num_decoder_layers is not None else self.num_layers
        self.num_heads = int(num_heads)
        self.relative_attention_num_buckets = int(relative_attention_num_buckets)
        self.relative_attention_max_distance = int(relative_attention_max_distance)
        self.dropout_rate = float(dropout_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_factor = float(initializer_factor)
        self.feed_forward_proj = feed_forward_proj
        act_info = feed_forward_proj.split("-")
        self.dense_act_fn = "gelu_new" if feed_forward_proj == "gated-gelu" else act_info[-1]
        self.is_gated_act = act_info[0] == "gated"
        self.use_cache = use_cache
        kwargs.setdefault("is_encoder_decoder", True)
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        self.validate_layout()

    @property
    def num_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def generation_level_offsets(self) -> list[int]:
        """Where ``generate()`` writes each level's codes: the tokenizer's own code tokens."""
        return list(self.level_offsets)

    def validate_layout(self) -> None:
        """Raise ConfigError if the code blocks do not fit the vocabulary."""
        if len(self.level_offsets) != len(self.codebook_sizes):
            raise ConfigError(f"{len(self.level_offsets)} level offsets for {len(self.codebook_sizes)} levels")
        if not self.codebook_sizes:
            raise ConfigError("codebook_sizes is empty: a semantic ID needs at least one level")
        for level, (off, size) in enumerate(zip(self.level_offsets, self.codebook_sizes)):
            if size < 1 or off < 0 or off + size > self.vocab_size:
                raise ConfigError(
                    f"level {level}: codes [{off}, {off + size}) do not fit the vocabulary of {self.vocab_size}"
                )
        if self.d_model < 1 or self.num_heads < 1 or self.d_kv < 1:
            raise ConfigError("d_model, num_heads and d_kv must be positive")

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "TigerConfig":
        """A config whose vocabulary layout matches a ``GenRecTokenizer``."""
        return cls(
            vocab_size=len(tokenizer),
            codebook_sizes=tokenizer.codebook_sizes,
            level_offsets=tokenizer.level_offsets,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            **kwargs,
        )


__all__ = ["TigerConfig"]
