"""The causal self-attention stack of the item-sequence families (SASRec, RPG).

Inputs are left-padded, so the most recent item is the last position of every row; position
embeddings count from that item backwards (as SASRec's fixed-length left padding does), so a
history means the same whatever the batch pads it to.  LayerNorm after each residual by default
(SASRec's), before each sublayer with ``norm_first``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ..errors import InvalidInputError
from .fast_dropout import use_fast_dropout

IGNORE_INDEX = -100  # labels of positions that learn nothing


@dataclass
class CausalRecommenderOutput(ModelOutput):
    """``loss`` (over the supervised positions; each family says which) and the last layer's ``hidden_states`` [B, T, d]."""

    loss: torch.FloatTensor | None = None
    hidden_states: torch.FloatTensor | None = None


class CausalBlock(nn.Module):
    """Multi-head causal self-attention and a feed-forward layer, each with a residual and a LayerNorm."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, hidden_act: str, dropout: float,
                 attention_dropout: float, layer_norm_eps: float, norm_first: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_first = norm_first
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ffn_in = nn.Linear(hidden_size, intermediate_size)
        self.ffn_out = nn.Linear(intermediate_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.gelu if hidden_act == "gelu" else F.relu

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


class CausalTransformer(nn.Module):
    """Position embeddings + ``num_layers`` causal blocks over input embeddings ``[B, T, d]``.

    Built from a config with SASRec-style attribute names (``hidden_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``intermediate_size``, ``hidden_act``, ``hidden_dropout_prob``,
    ``attention_probs_dropout_prob``, ``max_position_embeddings``, ``layer_norm_eps``, ``norm_first``).
    """

    def __init__(self, config) -> None:
        super().__init__()
        d = config.hidden_size
        self.max_positions = config.max_position_embeddings
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.embedding_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if not config.norm_first else nn.Identity()
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.norm_first else nn.Identity()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.blocks = nn.ModuleList([
            CausalBlock(d, config.num_attention_heads, config.intermediate_size, config.hidden_act,
                        config.hidden_dropout_prob, config.attention_probs_dropout_prob, config.layer_norm_eps,
                        config.norm_first)
            for _ in range(config.num_hidden_layers)
        ])
        use_fast_dropout(self)

    def forward(self, inputs_embeds: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, T, d]``; ``padding`` [B, T] is True at padded positions."""
        batch, length, _ = inputs_embeds.shape
        if length > self.max_positions:
            raise InvalidInputError(f"histories of {length} items exceed max_position_embeddings={self.max_positions}")
        # the last position (the most recent item) always gets the last position embedding
        x = inputs_embeds + self.position_embeddings.weight[self.max_positions - length :][None]
        x = self.dropout(self.embedding_norm(x))
        device = inputs_embeds.device
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        mask = causal[None] & ~padding[:, None, :]
        mask = (mask | torch.eye(length, dtype=torch.bool, device=device)[None])[:, None]  # padding sees itself: no NaN
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)


def supervised_positions(hidden: torch.Tensor, labels: torch.LongTensor) -> tuple[torch.Tensor, torch.LongTensor]:
    """States ``[N, d]`` at the supervised positions of ``labels`` and their target item rows (label - 1).

    InvalidInputError when no position is supervised (a loss over nothing would be NaN).
    """
    supervised = labels != IGNORE_INDEX
    if not bool(supervised.any()):
        raise InvalidInputError("labels supervise no position (all -100)")
    return hidden[supervised], labels[supervised] - 1


def init_sequence_model_weights(module: nn.Module, std: float) -> None:
    """Normal(0, std) weights, zero biases, unit LayerNorms, a zero padding row (the item-sequence families' init).

    Keyed on leaf modules: outside the transformers namespace only those reach ``_init_weights``.
    """
    from transformers import initialization as init

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


__all__ = ["CausalBlock", "CausalRecommenderOutput", "CausalTransformer", "IGNORE_INDEX", "init_sequence_model_weights", "supervised_positions"]
