"""SASRec: causal self-attention over a user's items; the next item scored against every item.

Inputs are item rows + 1 (0 is padding), left-padded so the most recent item is the last position
(``models/causal_transformer.py``).  ``forward`` trains every position of a
sequence at once: ``labels[b, t]`` is the row + 1 of the item that follows position ``t`` (-100
where nothing is learned).  ``item_scores`` gives the score of every item after the last position:
ranking is exact, over the whole catalogue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from ...errors import InvalidInputError
from ..causal_transformer import CausalRecommenderOutput, CausalTransformer, init_sequence_model_weights, supervised_positions
from ..exact_recommend import ExactRecommendMixin
from ..publishing import PublishWithCardMixin
from .configuration_sasrec import SASRecConfig
from .processing_sasrec import SASRecProcessor


class SASRecPreTrainedModel(PreTrainedModel):
    config_class = SASRecConfig
    config: SASRecConfig
    base_model_prefix = "sasrec"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # forward takes **kwargs only to ignore evaluation fields

    def _init_weights(self, module: nn.Module) -> None:
        init_sequence_model_weights(module, self.config.initializer_range)


class SASRecForSequentialRecommendation(ExactRecommendMixin, PublishWithCardMixin, SASRecPreTrainedModel):
    """SASRec with tied input / output item embeddings and a softmax over the catalogue."""

    processor_class = SASRecProcessor

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__(config)
        config.validate()
        self.item_embeddings = nn.Embedding(config.num_items + 1, config.hidden_size, padding_idx=0)
        self.transformer = CausalTransformer(config)
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
        padding = input_ids == 0 if attention_mask is None else attention_mask == 0
        return self.transformer(self.item_embeddings(input_ids), padding)

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
    ) -> CausalRecommenderOutput:
        hidden = self.encode(input_ids, attention_mask)
        loss = None
        if labels is not None:
            loss = self.loss(*supervised_positions(hidden, labels))
        return CausalRecommenderOutput(loss=loss, hidden_states=hidden)

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


__all__ = ["SASRecForSequentialRecommendation", "SASRecPreTrainedModel"]
