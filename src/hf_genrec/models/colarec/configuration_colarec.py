"""Configuration of ColaRec (Wang et al., CIKM 2024): a T5 encoder-decoder generating item GIDs."""

from __future__ import annotations

from transformers import PretrainedConfig

from ...remote_code import RemoteCodeConfigMixin

TASK_IDS = {"rec": 0, "index": 1}
POOLING_MODES = ("mean", "last", "first")
CODE_EMBEDDING_SCOPES = ("level", "node")
NODE_SCORINGS = ("embedding", "item_logsumexp")


class ColaRecConfig(RemoteCodeConfigMixin, PretrainedConfig):
    """T5 sizes, catalogue sizes, GID shape and loss weights of a ColaRec model.

    Encoder vocabulary: ``vocab_size`` text tokens (the shared word embedding; slot placeholders
    and the task token are ordinary ids in it, overwritten by learned embeddings).
    Decoder vocabulary (for ``generate()`` only): id 0 = decoder start / pad, id 1 = end, then
    the codes of level 0, level 1, ... in order (``code_offset(level) + code``).

    Code embeddings (``code_embedding_scope``): ``"level"`` keeps one table a level, row = code
    (the paper's codebook; code ``k`` of level 1 means the same row under every first code);
    ``"node"`` gives every node of the GID tree its own row: level ``t``'s table has one row per
    distinct prefix of length ``t + 1`` (``gid_tree_sizes[t]`` rows; the last level's rows are the
    items, in table-row order), the decoder reads a prefix through its node's row and scores a
    level's codes against the rows of the current node's children only.  The last step is then an
    item-embedding softmax among siblings instead of a shared code that names a different item
    under every prefix.  The tree (children of each node) is held in buffers the build fills
    (``set_gid_tree``) and the checkpoint saves.

    Node scores (``node_scoring``, node-scoped codes only): ``"embedding"`` scores a child node by
    its own row; ``"item_logsumexp"`` by the log-sum-exp of its items' scores, so the level
    softmaxes factorise one softmax over all items and a beam over the tree ranks as that softmax
    does.  One row cannot stand for the sum over hundreds of items: scored by their mean vector,
    LightGCN's own vectors lose 13% N@20 to the tree on Phones (``bench/colarec_tree_scoring.py``).

    Loss weights: ``rec`` (user content -> next GID), ``index`` (item content + users -> GID),
    ``bpr`` (pooled user vs positive / negative item) and ``contrastive`` (item vs an item sharing
    its GID prefix vs a negative).  The reference code weighs the generation losses 0.08, BPR 1
    and the contrastive term 0.1; a weight of 0 skips that term entirely.
    """

    model_type = "colarec"
    # Saved checkpoints carry these files, so they load with trust_remote_code=True without hf_genrec.
    remote_auto_map = {
        "AutoConfig": "configuration_colarec.ColaRecConfig",
        "AutoModel": "modeling_colarec.ColaRecForGenerativeRecommendation",
        "AutoModelForSeq2SeqLM": "modeling_colarec.ColaRecForGenerativeRecommendation",
    }
    keys_to_ignore_at_inference = ["past_key_values", "cache"]
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"}

    def __init__(
        self,
        vocab_size: int = 32128,
        num_items: int = 1,
        num_users: int = 1,
        codebook_sizes: list[int] | tuple[int, ...] = (32, 32, 32),
        d_model: int = 128,
        d_kv: int = 32,
        d_ff: int = 512,
        num_layers: int = 2,
        num_decoder_layers: int | None = None,
        num_heads: int = 4,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        dropout_rate: float = 0.1,
        layer_norm_epsilon: float = 1e-6,
        initializer_factor: float = 1.0,
        feed_forward_proj: str = "relu",
        use_item_position_embeddings: bool = False,
        max_item_positions: int = 64,
        tie_code_heads: bool = True,
        code_embedding_scope: str = "level",
        node_scoring: str = "embedding",
        gid_tree_sizes: list[int] | tuple[int, ...] | None = None,
        pooling: str = "mean",
        rec_loss_weight: float = 1.0,
        index_loss_weight: float = 1.0,
        bpr_loss_weight: float = 1.0,
        contrastive_loss_weight: float = 0.1,
        pad_token_id: int = 0,
        eos_token_id: int = 1,
        decoder_start_token_id: int = 0,
        use_cache: bool = True,
        is_encoder_decoder: bool = True,
        **kwargs,
    ):
        self.vocab_size = int(vocab_size)
        self.num_items = int(num_items)
        self.num_users = int(num_users)
        self.codebook_sizes = [int(k) for k in codebook_sizes]
        self.d_model = d_model
        self.d_kv = d_kv
        self.d_ff = d_ff
        self.num_layers = num_layers
        self.num_decoder_layers = num_decoder_layers if num_decoder_layers is not None else num_layers
        self.num_heads = num_heads
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_factor = initializer_factor
        self.feed_forward_proj = feed_forward_proj
        self.use_item_position_embeddings = bool(use_item_position_embeddings)
        self.max_item_positions = int(max_item_positions)
        self.tie_code_heads = bool(tie_code_heads)
        self.code_embedding_scope = code_embedding_scope
        self.node_scoring = node_scoring
        self.gid_tree_sizes = [int(n) for n in gid_tree_sizes] if gid_tree_sizes is not None else None
        self.pooling = pooling
        self.rec_loss_weight = float(rec_loss_weight)
        self.index_loss_weight = float(index_loss_weight)
        self.bpr_loss_weight = float(bpr_loss_weight)
        self.contrastive_loss_weight = float(contrastive_loss_weight)
        self.use_cache = use_cache
        kwargs.setdefault("tie_word_embeddings", False)  # nothing here ties to the word embedding
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            is_encoder_decoder=is_encoder_decoder,
            **kwargs,
        )
        self._check_values()

    def _check_values(self) -> None:
        """Raise ``ConfigError`` naming the bad field."""
        from ...errors import ConfigError

        positive = {
            "vocab_size": self.vocab_size,
            "num_items": self.num_items,
            "num_users": self.num_users,
            "d_model": self.d_model,
            "d_kv": self.d_kv,
            "d_ff": self.d_ff,
            "num_layers": self.num_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "num_heads": self.num_heads,
            "max_item_positions": self.max_item_positions,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"ColaRecConfig.{name} must be a positive integer, got {value!r}")
        if not self.codebook_sizes or any(k <= 0 for k in self.codebook_sizes):
            raise ConfigError(f"ColaRecConfig.codebook_sizes must be positive integers, got {self.codebook_sizes}")
        if self.code_embedding_scope not in CODE_EMBEDDING_SCOPES:
            raise ConfigError(
                f"ColaRecConfig.code_embedding_scope must be one of {CODE_EMBEDDING_SCOPES}, got {self.code_embedding_scope!r}"
            )
        if self.code_embedding_scope == "node":
            sizes = self.gid_tree_sizes
            if sizes is None or len(sizes) != self.num_levels or any(n <= 0 for n in sizes):
                raise ConfigError(
                    f"ColaRecConfig.gid_tree_sizes must list the node count of each of the {self.num_levels} levels "
                    f"when code_embedding_scope is 'node', got {sizes}"
                )
            if sizes[-1] != self.num_items:
                raise ConfigError(f"ColaRecConfig.gid_tree_sizes[-1] ({sizes[-1]}) must equal num_items ({self.num_items})")
            if not self.tie_code_heads:
                raise ConfigError("ColaRecConfig: code_embedding_scope 'node' scores against the node embeddings (tie_code_heads true)")
        if self.node_scoring not in NODE_SCORINGS:
            raise ConfigError(f"ColaRecConfig.node_scoring must be one of {NODE_SCORINGS}, got {self.node_scoring!r}")
        if self.node_scoring != "embedding" and self.code_embedding_scope != "node":
            raise ConfigError(f"ColaRecConfig.node_scoring {self.node_scoring!r} needs code_embedding_scope 'node'")
        if self.pooling not in POOLING_MODES:
            raise ConfigError(f"ColaRecConfig.pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        for name in ("rec_loss_weight", "index_loss_weight", "bpr_loss_weight", "contrastive_loss_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ColaRecConfig.{name} must be >= 0, got {getattr(self, name)}")

    # ------------------------------------------------------------------ decoder vocabulary
    @property
    def num_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def node_scoped_codes(self) -> bool:
        return self.code_embedding_scope == "node"

    def gid_tree_parents(self, level: int) -> int:
        """Rows of level ``level``'s children table: the nodes one level up (1 for the root)."""
        return 1 if level == 0 else self.gid_tree_sizes[level - 1]

    def code_offset(self, level: int) -> int:
        """First decoder-vocabulary id of ``level``'s codes (after start=0 and end=1)."""
        return 2 + sum(self.codebook_sizes[:level])

    @property
    def generation_level_offsets(self) -> list[int]:
        """Where ``generate()`` writes each level's codes (the decoder's own vocabulary, not the tokenizer's)."""
        return [self.code_offset(level) for level in range(self.num_levels)]

    @property
    def decoder_vocab_size(self) -> int:
        return 2 + sum(self.codebook_sizes)

    @property
    def loss_weights(self) -> dict[str, float]:
        return {
            "rec": self.rec_loss_weight,
            "index": self.index_loss_weight,
            "bpr": self.bpr_loss_weight,
            "contrastive": self.contrastive_loss_weight,
        }

    def to_t5_kwargs(self) -> dict:
        """The T5 hyperparameters of the encoder / decoder stacks."""
        return {
            "d_model": self.d_model,
            "d_kv": self.d_kv,
            "d_ff": self.d_ff,
            "num_layers": self.num_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "num_heads": self.num_heads,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
            "dropout_rate": self.dropout_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_factor": self.initializer_factor,
            "feed_forward_proj": self.feed_forward_proj,
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_id,
            "decoder_start_token_id": self.decoder_start_token_id,
        }


__all__ = ["CODE_EMBEDDING_SCOPES", "ColaRecConfig", "NODE_SCORINGS", "POOLING_MODES", "TASK_IDS"]
