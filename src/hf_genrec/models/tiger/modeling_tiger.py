"""TIGER: a T5 encoder-decoder that reads a user's history as code tokens and writes the next item's ID.

Decoder position ``t`` writes level ``t`` of the semantic ID, so only level ``t``'s code tokens are
scored there: the head is a matmul with that level's slice of the output embedding, the loss is a
softmax over the level's codes, and the full-vocabulary logits returned by ``forward`` hold a large
negative value everywhere else (``generate()`` therefore ranks exactly like the fast decoder).

Besides ``forward`` / ``generate`` the model implements the level-decoding protocol of
``hf_genrec.generation`` (``encode_for_decoding`` / ``level_logits``).  Its ``level_logits`` runs the
decoder one position at a time with :mod:`hf_genrec.models.t5_level_decoding` (encoder-side and
start-position keys/values once per *user*, so beam search never copies or reorders them).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin
from transformers import initialization as init
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import (
    T5Attention,
    T5DenseActDense,
    T5DenseGatedActDense,
    T5LayerNorm,
    T5PreTrainedModel,
    T5Stack,
)

from ...errors import CheckpointMismatchError, InvalidInputError
from ..fast_dropout import use_fast_dropout
from ..generate_recommend import GenerateRecommendMixin
from ..publishing import PublishWithCardMixin
from ..t5_level_decoding import T5LevelCache, decode_level, embedding_rows, encode_packed, is_plain
from .configuration_tiger import TigerConfig
from .processing_tiger import TigerProcessor


def _neg(dtype: torch.dtype) -> float:
    """The large finite negative used for tokens a position may not write (-inf breaks softmax on all-masked rows)."""
    return torch.finfo(dtype).min / 2


class TigerPreTrainedModel(T5PreTrainedModel):
    config_class = TigerConfig
    config: TigerConfig
    base_model_prefix = "tiger"
    _keys_to_ignore_on_load_unexpected = [r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight"]

    def _init_weights(self, module: nn.Module) -> None:
        """T5's scheme for the stacks; embedding std 1 and the output head std d_model^-0.5.

        The output head's scale matters: T5's generic init (std 1 for an untied head) starts at loss ~40
        and wastes hundreds of steps.  Keyed on leaf modules, as custom models only reach those.
        """
        factor = self.config.initializer_factor
        d_model, d_ff = self.config.d_model, self.config.d_ff
        if isinstance(module, T5LayerNorm):
            init.constant_(module.weight, factor * 1.0)
        elif isinstance(module, T5DenseActDense):
            init.normal_(module.wi.weight, mean=0.0, std=factor * d_model**-0.5)
            init.normal_(module.wo.weight, mean=0.0, std=factor * d_ff**-0.5)
        elif isinstance(module, T5DenseGatedActDense):
            init.normal_(module.wi_0.weight, mean=0.0, std=factor * d_model**-0.5)
            init.normal_(module.wi_1.weight, mean=0.0, std=factor * d_model**-0.5)
            init.normal_(module.wo.weight, mean=0.0, std=factor * d_ff**-0.5)
        elif isinstance(module, T5Attention):
            d_kv, n_heads = self.config.d_kv, self.config.num_heads
            init.normal_(module.q.weight, mean=0.0, std=factor * (d_model * d_kv) ** -0.5)
            init.normal_(module.k.weight, mean=0.0, std=factor * d_model**-0.5)
            init.normal_(module.v.weight, mean=0.0, std=factor * d_model**-0.5)
            init.normal_(module.o.weight, mean=0.0, std=factor * (n_heads * d_kv) ** -0.5)
            if module.has_relative_attention_bias:
                init.normal_(module.relative_attention_bias.weight, mean=0.0, std=factor * d_model**-0.5)
        elif isinstance(module, nn.Linear):  # the output head
            init.normal_(module.weight, mean=0.0, std=factor * d_model**-0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=factor * 1.0)


class TigerForGenerativeRecommendation(GenerateRecommendMixin, PublishWithCardMixin, TigerPreTrainedModel, GenerationMixin):
    """TIGER generative retriever: history code tokens in, the next item's code tokens out."""

    _input_embedding_ties = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }
    _tied_weights_keys = {**_input_embedding_ties, "lm_head.weight": "shared.weight"}
    # forward takes **kwargs only to ignore batch fields such as targets/exclude: the loss is a mean.
    accepts_loss_kwargs = False
    # level_logits accepts encoder states with one row per user while prev_codes has one row per beam.
    level_decoding_broadcasts_encoder = True
    # model.recommend() / load_processor() read the processor saved beside the model
    processor_class = TigerProcessor

    def __init__(self, config: TigerConfig) -> None:
        super().__init__(config)
        config.validate_layout()
        self.shared = nn.Embedding(config.vocab_size, config.d_model)

        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        encoder_config.use_cache = False
        encoder_config.tie_word_embeddings = False
        self.encoder = T5Stack(encoder_config)

        decoder_config = copy.deepcopy(config)
        decoder_config.is_decoder = True
        decoder_config.num_layers = config.num_decoder_layers
        decoder_config.tie_word_embeddings = False
        self.decoder = T5Stack(decoder_config)

        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        use_fast_dropout(self)
        self.post_init()
        if self.generation_config is not None:
            self.generation_config.max_new_tokens = config.num_levels

    def get_expanded_tied_weights_keys(self, all_submodels: bool = False) -> dict:
        """Encoder and decoder always share ``shared``; the output head only when ``tie_word_embeddings``."""
        if all_submodels:
            return super().get_expanded_tied_weights_keys(all_submodels=True)
        ties = dict(self._input_embedding_ties)
        if self.config.tie_word_embeddings:
            ties["lm_head.weight"] = "shared.weight"
        return ties

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.shared = new_embeddings
        self.encoder.set_input_embeddings(new_embeddings)
        self.decoder.set_input_embeddings(new_embeddings)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def get_encoder(self, modality: str | None = None) -> T5Stack:
        return self.encoder

    # ------------------------------------------------------------------ per-level head
    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    def level_scores(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Raw scores of ``level``'s codes from decoder hidden states ``[..., d_model]``.

        A plain head multiplies by its level slice only; a replaced one (an adapter) runs in full.
        """
        off, size = self.config.level_offsets[level], self.config.codebook_sizes[level]
        if is_plain(self.lm_head):
            return hidden @ self.lm_head.weight[off : off + size].t()
        return self.lm_head(hidden)[..., off : off + size]

    def _full_logits(self, hidden: torch.Tensor, start: int) -> torch.Tensor:
        """Full-vocabulary logits [B, T, V]: level scores in each position's slice, a large negative elsewhere.

        Positions past the last level may only write EOS (so ``generate()`` with extra tokens just ends).
        """
        batch, length, _ = hidden.shape
        logits = hidden.new_full((batch, length, self.config.vocab_size), _neg(hidden.dtype))
        for t in range(length):
            level = start + t
            if level < self.num_levels:
                off, size = self.config.level_offsets[level], self.config.codebook_sizes[level]
                logits[:, t, off : off + size] = self.level_scores(hidden[:, t], level)
            elif self.config.eos_token_id is not None:
                logits[:, t, self.config.eos_token_id] = 0.0
        return logits

    def _level_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over each level's own codes (-100 labels ignored).

        No host-device synchronisation: the label checks run only where reading a tensor is free (CPU).
        """
        if labels.device.type == "cpu":
            self._check_labels(labels)
        total = hidden.new_zeros((), dtype=torch.float32)
        count = labels.new_zeros(())
        for level in range(min(labels.shape[1], self.num_levels)):
            target = labels[:, level]
            ignored = target == -100
            codes = torch.where(ignored, target, target - self.config.level_offsets[level])
            scores = self.level_scores(hidden[:, level], level)
            total = total + nn.functional.cross_entropy(scores.float(), codes, ignore_index=-100, reduction="sum")
            count = count + (~ignored).sum()
        return total / count.clamp(min=1)

    def _check_labels(self, labels: torch.Tensor) -> None:
        for level in range(min(labels.shape[1], self.num_levels)):
            target = labels[:, level]
            codes = target[target != -100] - self.config.level_offsets[level]
            if bool(((codes < 0) | (codes >= self.config.codebook_sizes[level])).any()):
                raise InvalidInputError(f"labels at position {level} are not level-{level} code tokens")
        if labels.shape[1] > self.num_levels and bool((labels[:, self.num_levels :] != -100).any()):
            raise InvalidInputError(f"labels are longer than the {self.num_levels} levels of an ID")

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        cache: EncoderDecoderCache | None = None,
        past_key_values: EncoderDecoderCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,  # batch fields for evaluation (targets, exclude, user_id) are ignored
    ) -> Seq2SeqLMOutput:
        cache = cache if cache is not None else past_key_values
        stack_kwargs = {}
        if output_attentions is not None:
            stack_kwargs["output_attentions"] = output_attentions
        if output_hidden_states is not None:
            stack_kwargs["output_hidden_states"] = output_hidden_states
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **stack_kwargs
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels[:, : self.num_levels])
        start = cache.get_seq_length() if cache is not None else 0
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            cache=cache,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            use_cache=use_cache,
            **stack_kwargs,
        )
        hidden = decoder_outputs.last_hidden_state
        loss = self._level_loss(hidden, labels) if labels is not None else None
        return Seq2SeqLMOutput(
            loss=loss,
            logits=self._full_logits(hidden, start),
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self._shift_right(labels)

    # ------------------------------------------------------------------ level-decoding protocol
    def encode_for_decoding(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, **_: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder once: ``(encoder_hidden_states [B, S, d], encoder_attention_mask [B, S])``."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return encode_packed(self.encoder, self.shared(input_ids), attention_mask), attention_mask

    def _start_embeddings(self, batch: int) -> torch.Tensor:
        return embedding_rows(self.shared, self.config.decoder_start_token_id, batch)

    def _code_embeddings(self, codes: torch.LongTensor, level: int) -> torch.Tensor:
        return self.shared(codes + self.config.level_offsets[level])

    def level_logits(
        self,
        level: int,
        prev_codes: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        past_key_values: T5LevelCache | None = None,
    ) -> tuple[torch.Tensor, T5LevelCache]:
        """Log-probabilities over ``level``'s codes for each prefix row, and the updated cache.

        ``prev_codes`` [N, level] holds codes (not token ids) of levels < ``level``; N must be a multiple
        of the B rows of ``encoder_hidden_states`` (rows of one user consecutive).  With a cache from the
        previous level (reordered to the current rows) only the newest token is run.
        """
        if not 0 <= level < self.num_levels:
            raise InvalidInputError(f"level {level} out of range [0, {self.num_levels})")
        hidden, cache = decode_level(
            self.decoder, level, prev_codes, encoder_hidden_states, encoder_attention_mask, past_key_values,
            start_embeds=self._start_embeddings, code_embeds=self._code_embeddings, max_positions=self.num_levels,
        )
        scores = self.level_scores(hidden, level).float()
        return torch.log_softmax(scores, dim=-1), cache

    # ------------------------------------------------------------------ pretrained T5 weights
    @classmethod
    def from_t5_pretrained(cls, name_or_path: str, tokenizer, **config_overrides: Any) -> "TigerForGenerativeRecommendation":
        """Start from a pretrained T5's encoder/decoder blocks; embeddings and head are new (the vocabulary differs).

        ``name_or_path`` is anything ``T5ForConditionalGeneration.from_pretrained`` accepts (a local
        directory offline).  Architecture sizes come from the T5 config; the layout from ``tokenizer``.
        """
        from transformers import T5ForConditionalGeneration

        t5 = T5ForConditionalGeneration.from_pretrained(name_or_path, trust_remote_code=False)
        t5c = t5.config
        arch = dict(
            d_model=t5c.d_model, d_kv=t5c.d_kv, d_ff=t5c.d_ff, num_layers=t5c.num_layers,
            num_decoder_layers=t5c.num_decoder_layers, num_heads=t5c.num_heads,
            relative_attention_num_buckets=t5c.relative_attention_num_buckets,
            relative_attention_max_distance=t5c.relative_attention_max_distance,
            feed_forward_proj=t5c.feed_forward_proj, dropout_rate=t5c.dropout_rate,
            layer_norm_epsilon=t5c.layer_norm_epsilon,
        )
        arch.update(config_overrides)
        model = cls(TigerConfig.from_tokenizer(tokenizer, **arch))
        state = {k: v for k, v in t5.state_dict().items() if k.startswith(("encoder.", "decoder.")) and "embed_tokens" not in k}
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in missing if k.startswith(("encoder.block", "decoder.block"))]
        if bad or unexpected:
            raise CheckpointMismatchError(f"T5 weights do not fit: missing {bad[:3]}, unexpected {list(unexpected)[:3]}")
        return model


__all__ = ["TigerForGenerativeRecommendation", "TigerPreTrainedModel"]
