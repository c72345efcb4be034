"""RPG: a causal transformer over items made of codes, predicting every digit of the next item's ID at once.

Why it suits a small budget: one causal pass learns every position of a history (like SASRec,
unlike an encoder-decoder that re-reads each prefix), the output is ``num_digits`` small softmaxes
instead of one over the catalogue, and items that share codes share parameters, so rarely seen
items borrow from similar ones.

* Input: item rows + 1 (0 = padding), left-padded; each item is the mean (or sum) of its digits'
  code embeddings (``item_codes``, a buffer saved with the weights).
* Head of digit ``j``: ``h_j = h + SiLU(W_j h + b_j)`` (zero-initialised, so it starts as ``h``);
  logits = cosine of ``h_j`` with digit ``j``'s code embeddings (tied to the input ones) / logit_temperature.
* Loss: cross-entropy of every digit of the next item, averaged, at every supervised position; with
  ``item_loss_weight`` also a softmax over the whole catalogue whose item logits are the mean of the
  item's digit logits (the ranking below up to a per-history constant), at ``item_loss_positions``
  sampled positions a batch: the digit losses learn each code, the item loss learns to tell whole
  items apart, as SASRec's full cross-entropy does.
* Ranking (``item_scores``): the log-probability of each item's ID, the sum over digits of
  ``log p_j(code_j)`` — every item of the catalogue scored exactly with one gather.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from ...errors import InvalidInputError
from ..causal_transformer import CausalRecommenderOutput, CausalTransformer, init_sequence_model_weights, supervised_positions
from ..exact_recommend import ExactRecommendMixin
from ..publishing import PublishWithCardMixin
from .configuration_rpg import RPGConfig
from .processing_rpg import RPGProcessor


class RPGPreTrainedModel(PreTrainedModel):
    config_class = RPGConfig
    config: RPGConfig
    base_model_prefix = "rpg"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # forward takes **kwargs only to ignore evaluation fields

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, RPGForGenerativeRecommendation):
            init.zeros_(module.head_weight)  # every digit head starts as the identity
            init.zeros_(module.head_bias)
        else:
            init_sequence_model_weights(module, self.config.initializer_range)


class RPGForGenerativeRecommendation(ExactRecommendMixin, PublishWithCardMixin, RPGPreTrainedModel):
    """RPG with tied code embeddings; ``set_item_codes`` gives it the catalogue's semantic IDs."""

    processor_class = RPGProcessor

    def __init__(self, config: RPGConfig) -> None:
        super().__init__(config)
        config.validate()
        m, k, d = config.num_digits, config.codebook_size, config.hidden_size
        self.code_embeddings = nn.Embedding(m * k + 1, d, padding_idx=m * k)  # last row: padding
        self.register_buffer("item_codes", torch.zeros(config.num_items, m, dtype=torch.long))
        self.transformer = CausalTransformer(config)
        self.head_weight = nn.Parameter(torch.zeros(m, d, d))
        self.head_bias = nn.Parameter(torch.zeros(m, d))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.code_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.code_embeddings = value

    @torch.no_grad()
    def set_item_codes(self, codes: torch.Tensor) -> None:
        """The catalogue's digits ``[num_items, num_digits]`` (row r: item row r), each in [0, codebook_size)."""
        codes = torch.as_tensor(codes, dtype=torch.long)
        expected = (self.config.num_items, self.config.num_digits)
        if tuple(codes.shape) != expected:
            raise InvalidInputError(f"item codes of shape {tuple(codes.shape)}, the model needs {expected}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size):
            raise InvalidInputError(f"item codes must lie in [0, {self.config.codebook_size})")
        self.item_codes.copy_(codes)

    def _item_tokens(self) -> torch.Tensor:
        """Code-embedding rows of every item row + 1 (row 0: padding) ``[num_items + 1, num_digits]``."""
        m, k = self.config.num_digits, self.config.codebook_size
        offsets = torch.arange(m, device=self.item_codes.device) * k
        padding = torch.full((1, m), m * k, dtype=torch.long, device=self.item_codes.device)
        return torch.cat([padding, self.item_codes + offsets], dim=0)

    # ------------------------------------------------------------------ encoder
    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[B, T, d]`` of left-padded item rows + 1."""
        if input_ids.ndim != 2:
            raise InvalidInputError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        tokens = self._item_tokens()[input_ids].view(batch * length, -1)
        items = F.embedding_bag(tokens, self.code_embeddings.weight, mode=self.config.input_aggregation,
                                padding_idx=self.code_embeddings.padding_idx)
        padding = input_ids == 0 if attention_mask is None else attention_mask == 0
        return self.transformer(items.view(batch, length, -1), padding)

    def digit_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_digits, codebook_size]`` of the next item's digits after states ``[N, d]``."""
        m, k, d = self.config.num_digits, self.config.codebook_size, self.config.hidden_size
        n = hidden.shape[0]
        z = (hidden @ self.head_weight.permute(1, 0, 2).reshape(d, m * d)).view(n, m, d)  # all heads in one matmul
        heads = F.normalize(hidden[:, None, :] + F.silu(z + self.head_bias), dim=-1).transpose(0, 1)  # [m, N, d]
        codes = F.normalize(self.code_embeddings.weight[: m * k], dim=-1).view(m, k, d) / self.config.logit_temperature
        return torch.bmm(heads, codes.transpose(1, 2)).transpose(0, 1)

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
            states, rows = supervised_positions(hidden, labels)
            logits = self.digit_logits(states)
            targets = self.item_codes[rows]
            loss = F.cross_entropy(logits.reshape(-1, self.config.codebook_size), targets.reshape(-1))
            if self.config.item_loss_weight > 0:
                loss = loss + self.config.item_loss_weight * self.item_loss(logits, rows)
        return CausalRecommenderOutput(loss=loss, hidden_states=hidden)

    def item_loss(self, digit_logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the catalogue at (at most ``item_loss_positions`` sampled) positions; an item's logit
        is the mean of its digits' logits.  Sampling bounds the cost, positions x items x digits."""
        if rows.shape[0] > self.config.item_loss_positions:
            pick = torch.randperm(rows.shape[0], device=rows.device)[: self.config.item_loss_positions]
            digit_logits, rows = digit_logits[pick], rows[pick]
        return F.cross_entropy(self._per_item(digit_logits, mode="mean"), rows)

    def _per_item(self, per_code: torch.Tensor, mode: str) -> torch.Tensor:
        """``[N, num_items]``: the sum or mean over each item's digits of ``per_code`` ``[N, num_digits, codebook_size]``."""
        columns = per_code.reshape(per_code.shape[0], -1).T.contiguous()  # [num_digits * codebook_size, N]
        return F.embedding_bag(self._item_tokens()[1:], columns, mode=mode).T

    # ------------------------------------------------------------------ ranking
    @torch.no_grad()
    def item_scores(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Log-probability of every item's ID (``[B, num_items]``, item-row order) after each history."""
        log_probs = F.log_softmax(self.digit_logits(self.encode(input_ids, attention_mask)[:, -1]), dim=-1)
        return self._per_item(log_probs, mode="sum")


__all__ = ["RPGForGenerativeRecommendation", "RPGPreTrainedModel"]
