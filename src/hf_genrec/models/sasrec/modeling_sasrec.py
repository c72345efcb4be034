"""SASRec: causal self-attention over a user's items; the next item scored against every item.

Inputs are item rows + 1 (0 is padding), left-padded so the most recent item is the last position;
position embeddings count from that item backwards (as SASRec's fixed-length left padding does), so
a history means the same whatever the batch's padding.  ``forward`` trains every position of a
sequence at once: ``labels[b, t]`` is the row + 1 of the item that follows position ``t`` (-100
where nothing is learned).  ``item_scores`` gives the score of every item after the last position:
ranking is exact, over the whole catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...errors import InvalidInputError
from ..fast_dropout import use_fast_dropout
from .configuration_sasrec import SASRecConfig

IGNORE_INDEX = -100


@dataclass
class SASRecOutput(ModelOutput):
    """``loss`` (cross-entropy of the supervised positions) and the last layer's ``hidden_states`` [B, T, d]."""

    loss: torch.FloatTensor | None = None
    hidden_states: torch.FloatTensor | None = None


class SASRecBlock(nn.Module):
    """Multi-head causal self-attention and a feed-forward layer, each with a residual and a LayerNorm
    (after the residual by default, as in SASRec; before it with ``norm_first``)."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.norm_first = config.norm_first
        self.attention_dropout = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.attention_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(d, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, d)
        self.ffn_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.activation = F.gelu if config.hidden_act == "gelu" else F.relu

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, d = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        dropout = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.out(y.transpose(1, 2).reshape(batch, length, d))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_out(self.dropout(self.activation(self.ffn_in(x))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.dropout(self.attention(self.attention_norm(x), mask))
            return x + self.dropout(self.feed_forward(self.ffn_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, mask)))
        return self.ffn_norm(x + self.dropout(self.feed_forward(x)))


class SASRecPreTrainedModel(PreTrainedModel):
    config_class = SASRecConfig
    config: SASRecConfig
    base_model_prefix = "sasrec"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # forward takes **kwargs only to ignore evaluation fields

    def _init_weights(self, module: nn.Module) -> None:
        """Normal(0, initializer_range) weights, zero biases, unit LayerNorms, a zero padding row.

        Keyed on leaf modules: outside the transformers namespace only those reach this method.
        """
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class SASRecForSequentialRecommendation(SASRecPreTrainedModel):
    """SASRec with tied input / output item embeddings and a softmax over the catalogue."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__(config)
        config.validate()
        d = config.hidden_size
        self.item_embeddings = nn.Embedding(config.num_items + 1, d, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.embedding_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if not config.norm_first else nn.Identity()
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.norm_first else nn.Identity()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.blocks = nn.ModuleList([SASRecBlock(config) for _ in range(config.num_hidden_layers)])
        use_fast_dropout(self)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.item_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.item_embeddings = value

    # ------------------------------------------------------------------ encoder
    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[B, T, d]`` of left-padded item rows + 1."""
        if input_ids.ndim != 2:
            raise InvalidInputError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        if length > self.config.max_position_embeddings:
            raise InvalidInputError(
                f"histories of {length} items exceed max_position_embeddings={self.config.max_position_embeddings}"
            )
        padding = input_ids == 0 if attention_mask is None else attention_mask == 0
        # the last position (the most recent item) always gets the last position embedding
        positions = self.position_embeddings.weight[self.config.max_position_embeddings - length :]
        x = self.item_embeddings(input_ids) + positions[None]
        x = self.dropout(self.embedding_norm(x))
        causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
        mask = causal[None] & ~padding[:, None, :]
        mask = mask | torch.eye(length, dtype=torch.bool, device=input_ids.device)[None]  # padding sees itself: no NaN
        mask = mask[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def output_embeddings(self) -> torch.Tensor:
        """Every item's output vector ``[num_items, d]`` (row r: item row r; tied to the input embeddings)."""
        return self.item_embeddings.weight[1:]

    # ------------------------------------------------------------------ training
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SASRecOutput:
        hidden = self.encode(input_ids, attention_mask)
        loss = None
        if labels is not None:
            supervised = labels != IGNORE_INDEX
            if not bool(supervised.any()):
                raise InvalidInputError("labels supervise no position (all -100)")
            loss = self.loss(hidden[supervised], labels[supervised] - 1)
        return SASRecOutput(loss=loss, hidden_states=hidden)

    def loss(self, hidden: torch.Tensor, targets: torch.LongTensor) -> torch.Tensor:
        """Cross-entropy of target item rows over the catalogue (``full``) or over the target and
        ``num_negatives`` items drawn uniformly for the whole batch (``sampled``; accidental hits masked)."""
        items = self.output_embeddings()
        if self.config.loss == "full":
            return F.cross_entropy(hidden @ items.T, targets)
        negatives = torch.randint(0, self.config.num_items, (self.config.num_negatives,), device=hidden.device)
        positive = (hidden * items[targets]).sum(-1, keepdim=True)
        negative = (hidden @ items[negatives].T).masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
        logits = torch.cat([positive, negative], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets))

    # ------------------------------------------------------------------ ranking
    @torch.no_grad()
    def item_scores(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Score of every item (``[B, num_items]``, item-row order) as the next item after each history."""
        return self.encode(input_ids, attention_mask)[:, -1] @ self.output_embeddings().T


__all__ = ["SASRecForSequentialRecommendation", "SASRecOutput", "SASRecPreTrainedModel"]
