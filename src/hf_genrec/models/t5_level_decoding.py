"""Inference passes through transformers ``T5Stack`` weights for level-by-level beam search.

Beam search over fixed-length IDs encodes each user once and then runs the decoder one position
per level on B users x n beams.  ``T5Stack.forward`` serves that poorly: it repeats the encoder
states per beam, reorders every cached tensor between levels, rebuilds masks at each call and
runs the encoder's feed-forward work on padding.  These functions run the same weights (same
arithmetic, results equal to float rounding) with

- :func:`encode_packed`: norms, projections and feed-forward on the real tokens only, packed together;
- :func:`decoder_step`: cross-attention keys/values kept once per *user* (a user's n beams query
  them together), the start position's self-attention keys/values once per user too (every beam
  begins with the same token), later positions' keys/values in one position-major buffer, so a
  reorder copies only the filled positions of the surviving rows and self-attention over an ID's
  few positions is elementwise;
- residual additions fused into the output projections (``addmm``), ReLU in place.

They are inference paths: dropout is not applied.

Weights are read directly only from plain ``nn.Linear`` / ``nn.Embedding`` modules.  A module that
something else has replaced (a peft LoRA layer, a quantised linear) is called instead, so unmerged
adapters count exactly as in the model's own forward (:func:`embedding_rows`, :func:`embedding_table`); plain models keep the direct, fused path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from transformers.models.t5.modeling_t5 import T5DenseGatedActDense, T5Stack

from ..errors import InvalidInputError


@dataclass
class T5LevelCache:
    """Decoder state between levels for B users with n prefix rows each (rows of a user consecutive).

    ``cross_k`` / ``cross_v`` per layer: ``[B, H, d_kv, S]`` / ``[B, H, S, d_kv]``; ``cross_bias``
    ``[B, 1, 1, S]``.  ``start_k`` / ``start_v`` per layer: the start position's ``[B, 1, H, d_kv]``.
    ``self_kv``: keys (index 0) and values (1) of positions 1.. for every layer, one buffer
    ``[max_positions - 1, layers, 2, N, H, d_kv]`` with the first ``length - 1`` positions filled.
    ``num_rows`` is N, the prefix rows the next step must bring.
    """

    cross_k: list[torch.Tensor]
    cross_v: list[torch.Tensor]
    cross_bias: torch.Tensor
    max_positions: int
    num_rows: int
    start_k: list[torch.Tensor] = field(default_factory=list)
    start_v: list[torch.Tensor] = field(default_factory=list)
    self_kv: torch.Tensor | None = None
    length: int = 0

    @property
    def num_users(self) -> int:
        return self.cross_bias.shape[0]

    def reorder_cache(self, row_index: torch.LongTensor) -> "T5LevelCache":
        """Keep (and repeat) prefix rows ``row_index``; the per-user parts never move.

        ``row_index`` must map every new row to a row of the same user (beam search does).
        """
        self.num_rows = int(row_index.shape[0])
        self.self_kv = self._rows(row_index)
        return self

    def select(self, users: torch.LongTensor | None, row_index: torch.LongTensor) -> "T5LevelCache":
        """A new cache for ``users`` (None: all, sharing their tensors) with prefix rows ``row_index``.

        This cache is left as it is.  ``row_index`` lists rows of this cache, user-major in the order
        of ``users``, the same number for each of them.
        """
        pick = (lambda t: t) if users is None else (lambda t: t[users])
        return T5LevelCache(
            cross_k=[pick(k) for k in self.cross_k],
            cross_v=[pick(v) for v in self.cross_v],
            cross_bias=pick(self.cross_bias),
            max_positions=self.max_positions,
            num_rows=int(row_index.shape[0]),
            start_k=[pick(k) for k in self.start_k],
            start_v=[pick(v) for v in self.start_v],
            self_kv=self._rows(row_index),
            length=self.length,
        )

    def _rows(self, row_index: torch.LongTensor) -> torch.Tensor | None:
        """The self-attention buffer for rows ``row_index`` (only the filled positions are copied)."""
        filled = self.length - 1
        if self.self_kv is None or filled <= 0:
            return None  # nothing past the start yet: the buffer comes with the next step
        target = self.self_kv.new_empty(self.self_kv.shape[:3] + (row_index.shape[0],) + self.self_kv.shape[4:])
        torch.index_select(self.self_kv[:filled], 3, row_index, out=target[:filled])
        return target


def is_plain(module: nn.Module) -> bool:
    """Whether ``module`` is exactly ``nn.Linear`` / ``nn.Embedding`` (its ``.weight`` is all it computes with)."""
    return type(module) in (nn.Linear, nn.Embedding)


def embedding_rows(embedding: nn.Module, index: int, count: int) -> torch.Tensor:
    """Row ``index`` of an embedding, ``count`` times ``[count, d]`` (a view for a plain ``nn.Embedding``)."""
    if is_plain(embedding):
        return embedding.weight[index].expand(count, -1)
    ids = torch.full((1,), index, dtype=torch.long, device=embedding.weight.device)
    return embedding(ids).expand(count, -1)


def embedding_table(embedding: nn.Module) -> torch.Tensor:
    """Every row of an embedding ``[num, d]``: ``.weight`` for a plain ``nn.Embedding``, the module's output otherwise."""
    if is_plain(embedding):
        return embedding.weight
    return embedding(torch.arange(embedding.weight.shape[0], device=embedding.weight.device))


def _project(hidden: torch.Tensor, linear: nn.Module, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``hidden @ W.T`` (+ ``residual`` in the same kernel) for 2-D ``hidden``; replaced modules run their forward."""
    if not is_plain(linear):
        out = linear(hidden)
        return out if residual is None else out + residual
    if residual is None:
        return torch.mm(hidden, linear.weight.t())
    return torch.addmm(residual, hidden, linear.weight.t())


def _project_into(out: torch.Tensor, hidden: torch.Tensor, linear: nn.Module) -> None:
    """``out[:] = hidden @ W.T`` without a temporary for a plain ``nn.Linear``."""
    if is_plain(linear):
        torch.mm(hidden, linear.weight.t(), out=out)
    else:
        out.copy_(linear(hidden))


def _feed_forward(layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``hidden + FF(norm(hidden))`` for T5's ReLU/GELU and gated feed-forward layers."""
    dense = layer.DenseReluDense
    normed = layer.layer_norm(hidden)
    if isinstance(dense, T5DenseGatedActDense):
        inner = dense.act(_project(normed, dense.wi_0)) * _project(normed, dense.wi_1)
    else:
        inner = _project(normed, dense.wi)
        inner = inner.relu_() if isinstance(dense.act, nn.ReLU) else dense.act(inner)
    return _project(inner.to(dense.wo.weight.dtype), dense.wo, residual=hidden)


def _softmax(scores: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(scores, dim=dim, dtype=torch.float32).to(scores.dtype)


def encode_packed(stack: T5Stack, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The encoder stack's last hidden states ``[B, S, d]`` (zeros at padded positions).

    Position-wise work (norms, projections, feed-forward) runs on the real tokens only, packed
    together; only attention sees the padded ``[B, S]`` layout.  Even length-sorted batches pad
    to their longest history (a quarter of the tokens in ``bench/decode.py``'s batches of 64).
    """
    batch, src_len, d_model = inputs_embeds.shape
    heads, d_kv = stack.config.num_heads, stack.config.d_kv
    inner = heads * d_kv
    real = attention_mask.reshape(-1).nonzero().squeeze(1)  # flat positions of real tokens
    hidden = inputs_embeds.reshape(batch * src_len, d_model).index_select(0, real)
    dtype = hidden.dtype
    bias = stack.block[0].layer[0].SelfAttention.compute_bias(src_len, src_len, device=hidden.device).to(dtype)
    bias = bias + (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min  # [B, H, S, S]

    def padded(packed: torch.Tensor) -> torch.Tensor:  # [tokens, inner] -> [B, H, S, d_kv]
        full = packed.new_zeros(batch * src_len, inner).index_copy_(0, real, packed)
        return full.view(batch, src_len, heads, d_kv).transpose(1, 2)

    for block in stack.block:
        layer = block.layer[0]
        attn = layer.SelfAttention
        normed = layer.layer_norm(hidden)
        q, k, v = (padded(_project(normed, proj)) for proj in (attn.q, attn.k, attn.v))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)  # T5: no 1/sqrt(d)
        out = out.transpose(1, 2).reshape(batch * src_len, inner)
        hidden = _project(out.index_select(0, real), attn.o, residual=hidden)
        hidden = _feed_forward(block.layer[-1], hidden)
    hidden = stack.final_layer_norm(hidden)
    return hidden.new_zeros(batch * src_len, d_model).index_copy_(0, real, hidden).view(batch, src_len, d_model)


def new_level_cache(
    stack: T5Stack, encoder_hidden_states: torch.Tensor, encoder_attention_mask: torch.Tensor, max_positions: int
) -> T5LevelCache:
    """Cross-attention keys/values of every decoder layer, computed once per user."""
    batch, src_len, _ = encoder_hidden_states.shape
    heads, d_kv = stack.config.num_heads, stack.config.d_kv
    flat = encoder_hidden_states.reshape(batch * src_len, -1)
    cross_k, cross_v = [], []
    for block in stack.block:
        attn = block.layer[1].EncDecAttention
        cross_k.append(_project(flat, attn.k).view(batch, src_len, heads, d_kv).permute(0, 2, 3, 1).contiguous())
        cross_v.append(_project(flat, attn.v).view(batch, src_len, heads, d_kv).transpose(1, 2).contiguous())
    dtype = encoder_hidden_states.dtype
    bias = (1.0 - encoder_attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    return T5LevelCache(cross_k=cross_k, cross_v=cross_v, cross_bias=bias, max_positions=max_positions, num_rows=batch)


def decoder_step(stack: T5Stack, inputs_embeds: torch.Tensor, cache: T5LevelCache) -> torch.Tensor:
    """Advance the decoder by one position; returns the final hidden states ``[rows, d_model]``.

    ``inputs_embeds`` has ``cache.num_rows`` rows: B (one per user) at the start position, then
    B * n as set by :meth:`T5LevelCache.reorder_cache`.  The cache is updated in place.
    """
    pos = cache.length
    if pos >= cache.max_positions:
        raise InvalidInputError(f"the cache holds {cache.max_positions} positions; position {pos} does not fit")
    rows = inputs_embeds.shape[0]
    batch = cache.num_users
    if rows != cache.num_rows or rows % batch:
        raise InvalidInputError(f"the cache expects {cache.num_rows} rows at position {pos}, got {rows}")
    per_user = rows // batch
    heads, d_kv = stack.config.num_heads, stack.config.d_kv
    inner = heads * d_kv
    bias = stack.block[0].layer[0].SelfAttention.compute_bias(1, pos + 1, device=inputs_embeds.device, past_seen_tokens=pos)
    bias = bias.to(inputs_embeds.dtype)[0, :, 0, :]  # [H, pos + 1]: query ``pos`` against keys 0..pos
    if pos > 0 and cache.self_kv is None:  # positions 1..: allocated at the first of them
        cache.self_kv = inputs_embeds.new_empty((cache.max_positions - 1, len(stack.block), 2, rows, heads, d_kv))
    self_kv = cache.self_kv
    hidden = inputs_embeds
    for i, block in enumerate(stack.block):
        self_layer, cross_layer = block.layer[0], block.layer[1]
        attn = self_layer.SelfAttention
        normed = self_layer.layer_norm(hidden)
        if pos == 0:
            k, v = _project(normed, attn.k), _project(normed, attn.v)
            cache.start_k.append(k.view(batch, 1, heads, d_kv))
            cache.start_v.append(v.view(batch, 1, heads, d_kv))
            out = v  # one key: softmax weight 1
        else:
            keys, values = self_kv[:pos, i, 0], self_kv[:pos, i, 1]  # [pos, rows, H, d_kv]
            _project_into(keys[pos - 1].view(rows, inner), normed, attn.k)
            _project_into(values[pos - 1].view(rows, inner), normed, attn.v)
            q = _project(normed, attn.q).view(rows, heads, d_kv)
            q_user = q.view(batch, per_user, heads, d_kv)
            start_scores = (q_user * cache.start_k[i]).sum(-1).view(1, rows, heads)
            later_scores = (keys * q).sum(-1)  # [pos, rows, H]
            scores = torch.cat([start_scores, later_scores]) + bias.t()[:, None, :]
            weights = _softmax(scores, dim=0).unsqueeze(-1)  # [pos + 1, rows, H, 1]
            out = (weights[0].view(batch, per_user, heads, 1) * cache.start_v[i]).view(rows, heads, d_kv)
            out = out + (weights[1:] * values).sum(0)
            out = out.view(rows, inner)
        hidden = _project(out, attn.o, residual=hidden)

        attn = cross_layer.EncDecAttention
        normed = cross_layer.layer_norm(hidden)
        q = _project(normed, attn.q).view(batch, per_user, heads, d_kv).transpose(1, 2)
        scores = torch.matmul(q, cache.cross_k[i])
        scores += cache.cross_bias
        out = torch.matmul(_softmax(scores, dim=-1), cache.cross_v[i]).transpose(1, 2).reshape(rows, inner)
        hidden = _project(out, attn.o, residual=hidden)
        hidden = _feed_forward(block.layer[-1], hidden)
    cache.length = pos + 1
    return stack.final_layer_norm(hidden)


def decode_level(
    stack: T5Stack,
    level: int,
    prev_codes: torch.LongTensor,
    encoder_hidden_states: torch.Tensor,
    encoder_attention_mask: torch.Tensor,
    cache: T5LevelCache | None,
    start_embeds: Callable[[int], torch.Tensor],
    code_embeds: Callable[[torch.LongTensor, int], torch.Tensor],
    max_positions: int,
) -> tuple[torch.Tensor, T5LevelCache]:
    """Final decoder states ``[N, d]`` of the position that writes ``level``, and the cache.

    The model-side half of the level-decoding protocol's ``level_logits``: ``prev_codes`` [N, level]
    (N = n * B, rows of a user consecutive) are the codes of levels < ``level``; encoder states are
    one row per user.  With the previous level's cache (reordered to these rows) only the newest
    position runs; otherwise the whole prefix does.  ``start_embeds(B)`` gives the start position's
    inputs ``[B, d]``, ``code_embeds(codes, l)`` the inputs that read level ``l``'s codes.
    """
    rows, batch = prev_codes.shape[0], encoder_hidden_states.shape[0]
    if prev_codes.dim() != 2 or prev_codes.shape[1] != level or rows % batch:
        raise InvalidInputError(f"prev_codes must be [n * {batch}, {level}] at level {level}, got {list(prev_codes.shape)}")
    if cache is not None and cache.length == level and cache.num_rows == rows:
        return decoder_step(stack, code_embeds(prev_codes[:, -1], level - 1), cache), cache
    cache = new_level_cache(stack, encoder_hidden_states, encoder_attention_mask, max_positions)
    hidden = decoder_step(stack, start_embeds(batch), cache)
    if rows != batch:  # n rows per user from here on
        cache.reorder_cache(torch.arange(batch, device=prev_codes.device).repeat_interleave(rows // batch))
        hidden = hidden.repeat_interleave(rows // batch, 0)
    for position in range(level):
        hidden = decoder_step(stack, code_embeds(prev_codes[:, position], position), cache)
    return hidden, cache


__all__ = [
    "T5LevelCache", "decode_level", "decoder_step", "embedding_rows", "embedding_table", "encode_packed", "is_plain",
    "new_level_cache",
]
