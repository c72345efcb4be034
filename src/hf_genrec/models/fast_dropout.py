"""Dropout with cheap masks on CPU: one 64-bit random draw per four elements.

torch's CPU dropout draws a 32-bit random number for every element; for the small T5s trained here
that costs several times the matmuls it regularises (py-spy on the CPU TIGER recipe: 40% of the
training step was dropout).  Four 16-bit slices of one 64-bit draw give the same Bernoulli masks
(keep probability exact to 1/65536, the scale matched to it so the expectation is unchanged) for a
third of the time.  Other devices keep torch's own kernel.  The masks follow ``torch.manual_seed``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.models.t5.modeling_t5 import eager_attention_forward as t5_eager_attention_forward

ATTENTION_IMPLEMENTATION = "hf_genrec_eager"
_LEVELS = 1 << 16


def fast_dropout(hidden: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``nn.functional.dropout`` with masks drawn 16 bits an element on CPU."""
    if not training or p == 0.0:
        return hidden
    if hidden.device.type != "cpu" or not 0.0 < p < 1.0:
        return nn.functional.dropout(hidden, p, training)
    dropped = round(p * _LEVELS)
    draws = torch.empty((hidden.numel() + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    keep = draws.view(torch.int16)[: hidden.numel()].view(hidden.shape) >= dropped - (_LEVELS >> 1)
    return torch.where(keep, hidden * (_LEVELS / (_LEVELS - dropped)), 0.0)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` using :func:`fast_dropout`."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return fast_dropout(hidden, self.p, self.training)


def use_fast_dropout(module: nn.Module) -> None:
    """Swap every plain ``nn.Dropout`` inside ``module`` for a :class:`FastDropout` of the same rate."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p, child.inplace))


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5's eager attention, its attention-probability dropout drawn by :func:`fast_dropout`."""
    if not module.training or dropout == 0.0:
        return t5_eager_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=0.0, position_bias=position_bias, **kwargs
        )
    scores = torch.matmul(query, key.transpose(2, 3)) * (query.size(-1) ** -0.5 if scaling is None else scaling)
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = fast_dropout(nn.functional.softmax(scores, dim=-1), dropout, True)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION_IMPLEMENTATION, eager_attention_forward)
# Without a mask function of its own transformers treats the name as a kernel that needs no mask:
# the decoder would see its future tokens.
AttentionMaskInterface.register(ATTENTION_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
