"""ColaRec: a T5 encoder-decoder that reads item content and generates the next item's GID.

Encoder input (one sequence): position 0 is a learned *task prompt* (row 0 = recommendation,
row 1 = indexing), then item content.  Text tokens come from the shared word embedding; an
item's reserved slot (``item_slot_ids[b, s] >= 0``) carries that item's learned atom embedding
and, in indexing inputs, user slots (``user_slot_ids >= 0``) carry learned user embeddings.
Optional learned item-position embeddings number the tokens inside each item.

Decoder: the GID prefix is read through one code-embedding table per level (position 0 reads a
learned start embedding, position ``t`` the level ``t-1`` code).  Logits at level ``t`` are
``d_t · E_tᵀ`` with ``E_t`` that level's code-embedding table (the paper's codebook head; the
decoder state is scaled by ``d_model^-0.5`` first, as T5 does for tied heads), or separate linear
heads when ``config.tie_code_heads`` is false (the reference code's form).  With
``config.code_embedding_scope == "node"`` every node of the GID tree has its own embedding: the
prefix is read through its nodes' rows and level ``t`` scores only the children of the current node
(the last level's rows are the items themselves), see ``ColaRecConfig``.

Training forward: a dict of prefixed task tensors (see ``GROUPS``) so one step can mix the
recommendation, indexing, BPR and contrastive objectives; the weighted total is ``loss`` and the
unweighted terms are ``loss_components``.  Decoding: the level-decoding protocol
(``encode_for_decoding`` / ``level_logits``) and, for ``generate()``, a flat decoder vocabulary
(0 = start, 1 = end, then each level's codes) with ``-inf`` outside the current level's slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.t5.configuration_t5 import T5Config
from transformers.models.t5.modeling_t5 import T5Stack
from transformers.utils import ModelOutput

from ...errors import InvalidInputError
from ..fast_dropout import use_fast_dropout
from ..generate_recommend import GenerateRecommendMixin
from ..publishing import PublishWithCardMixin
from ..t5_level_decoding import T5LevelCache, decode_level, embedding_rows, embedding_table, encode_packed
from .configuration_colarec import TASK_IDS, ColaRecConfig
from .processing_colarec import ColaRecProcessor

# Prefixes of the training batch and the task (prompt row) of each.  ``rec``: user inputs with
# the target's GID as labels; ``index``: item content + interacting users -> the item's GID;
# ``pos`` / ``neg``: indexing-style inputs of the user's target item and of a sampled negative
# (labels optional: when present they also count as indexing examples); ``sib``: an item that
# shares ``pos``'s GID prefix (the contrastive positive).
GROUPS = {"rec": "rec", "index": "index", "pos": "index", "neg": "index", "sib": "index"}
FIELDS = ("input_ids", "attention_mask", "item_slot_ids", "user_slot_ids", "item_position_ids", "labels")
INDEXING_GROUPS = ("index", "pos", "neg")


@dataclass
class ColaRecOutput(ModelOutput):
    """``loss`` = Σ weight · component; ``loss_components`` are the unweighted terms."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: Cache | None = None
    loss_components: dict[str, torch.Tensor] | None = None
    encoder_last_hidden_state: torch.Tensor | None = None


def _t5_config(config: ColaRecConfig, *, decoder: bool) -> T5Config:
    kwargs = config.to_t5_kwargs()
    # The encoder stack's token table is the shared word embedding; the decoder's holds a single
    # row, the start-of-GID embedding (codes are read through the per-level tables).
    kwargs["vocab_size"] = 1 if decoder else config.vocab_size
    if decoder:  # token ids of the text vocabulary mean nothing to the one-row start table
        kwargs.update(pad_token_id=0, eos_token_id=None, decoder_start_token_id=0)
    t5 = T5Config(**kwargs)
    t5.is_decoder = decoder
    t5.use_cache = decoder and config.use_cache
    if decoder:
        t5.num_layers = config.num_decoder_layers
    attn = getattr(config, "_attn_implementation", None)
    if attn is not None:
        t5._attn_implementation = attn
    return t5


class ColaRecEncoder(nn.Module):
    """Builds the input embeddings (task prompt, words, atom items, users, positions) and runs T5."""

    main_input_name = "input_ids"

    def __init__(self, config: ColaRecConfig):
        super().__init__()
        self.config = config
        self.stack = T5Stack(_t5_config(config, decoder=False))
        self.task_embeddings = nn.Embedding(len(TASK_IDS), config.d_model)
        self.item_embeddings = nn.Embedding(config.num_items, config.d_model)
        self.user_embeddings = nn.Embedding(config.num_users, config.d_model)
        self.item_position_embeddings = (
            nn.Embedding(config.max_item_positions, config.d_model) if config.use_item_position_embeddings else None
        )

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.stack.embed_tokens

    def embed(
        self,
        input_ids: torch.LongTensor,
        item_slot_ids: torch.LongTensor | None = None,
        user_slot_ids: torch.LongTensor | None = None,
        item_position_ids: torch.LongTensor | None = None,
        task: int | str | torch.Tensor | None = None,
    ) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise InvalidInputError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise InvalidInputError(f"input_ids must lie in [0, {self.config.vocab_size}) (the text vocabulary)")
        embeds = self.word_embeddings(input_ids)
        for name, slots, table, size in (
            ("item_slot_ids", item_slot_ids, self.item_embeddings, self.config.num_items),
            ("user_slot_ids", user_slot_ids, self.user_embeddings, self.config.num_users),
        ):
            if slots is None:
                continue
            if slots.shape != input_ids.shape:
                raise InvalidInputError(f"{name} has shape {tuple(slots.shape)}, input_ids {tuple(input_ids.shape)}")
            mask = slots >= 0
            if mask.any():
                if slots.max() >= size:
                    raise InvalidInputError(f"{name} holds index {int(slots.max())} but the model has {size} rows")
                embeds = embeds.masked_scatter(mask.unsqueeze(-1), table(slots[mask]))
        task_ids = _task_tensor(task, input_ids.shape[0], input_ids.device)
        prompt = self.task_embeddings(task_ids).unsqueeze(1)
        embeds = torch.cat([prompt, embeds[:, 1:]], dim=1)
        if self.item_position_embeddings is not None and item_position_ids is not None:
            positions = item_position_ids.clamp(min=0, max=self.config.max_item_positions - 1)
            embeds = embeds + self.item_position_embeddings(positions)
        return embeds

    def attention_mask(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``attention_mask`` or, without one, every non-pad token and the task prompt."""
        if attention_mask is not None:
            return attention_mask
        attention_mask = (input_ids != self.config.pad_token_id).long()
        attention_mask[:, 0] = 1
        return attention_mask

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        item_slot_ids: torch.LongTensor | None = None,
        user_slot_ids: torch.LongTensor | None = None,
        item_position_ids: torch.LongTensor | None = None,
        task: int | str | torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        embeds = self.embed(input_ids, item_slot_ids, user_slot_ids, item_position_ids, task)
        attention_mask = self.attention_mask(input_ids, attention_mask)
        out = self.stack(inputs_embeds=embeds, attention_mask=attention_mask)
        return BaseModelOutput(last_hidden_state=out.last_hidden_state)


def _task_tensor(task, batch: int, device) -> torch.Tensor:
    if task is None:
        task = "rec"
    if isinstance(task, str):
        if task not in TASK_IDS:
            raise InvalidInputError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
        task = TASK_IDS[task]
    if isinstance(task, int):
        if task not in TASK_IDS.values():
            raise InvalidInputError(f"task id {task} is not one of {sorted(TASK_IDS.values())}")
        return torch.full((batch,), task, dtype=torch.long, device=device)
    task = torch.as_tensor(task, dtype=torch.long, device=device).reshape(-1)
    return task.expand(batch) if task.numel() == 1 else task


class ColaRecPreTrainedModel(PreTrainedModel):
    config_class = ColaRecConfig
    base_model_prefix = "colarec"
    main_input_name = "input_ids"
    _no_split_modules = ["T5Block"]
    _supports_sdpa = True
    # forward takes **kwargs (the prefixed task tensors) but computes its own mean losses
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        """Own leaf modules only: the T5 stacks are initialised by T5's own ``_init_weights``."""
        factor = self.config.initializer_factor
        if isinstance(module, nn.Embedding):
            std = 0.1 if getattr(module, "_colarec_small_init", False) else 1.0
            init.normal_(module.weight, mean=0.0, std=factor * std)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=factor * self.config.d_model**-0.5)
            if module.bias is not None:
                init.zeros_(module.bias)


class ColaRecForGenerativeRecommendation(GenerateRecommendMixin, PublishWithCardMixin, ColaRecPreTrainedModel, GenerationMixin):
    """ColaRec with codebook heads, multi-task losses and the level-decoding protocol."""

    # level_logits accepts encoder states with one row per user while prev_codes has one row per beam.
    level_decoding_broadcasts_encoder = True
    # model.recommend() / load_processor() read the processor saved beside the model
    processor_class = ColaRecProcessor

    def __init__(self, config: ColaRecConfig):
        super().__init__(config)
        self.encoder = ColaRecEncoder(config)
        self.decoder = T5Stack(_t5_config(config, decoder=True))
        rows = config.gid_tree_sizes if config.node_scoped_codes else config.codebook_sizes
        self.code_embeddings = nn.ModuleList(nn.Embedding(n, config.d_model) for n in rows)
        self._node_member_cache: dict[tuple, torch.Tensor] = {}  # node_members(), keyed by the tree buffers' versions
        if config.node_scoped_codes:
            # children[level][parent node, code] -> node of level ``level`` (item row at the last level), -1 if none
            for level, k in enumerate(config.codebook_sizes):
                self.register_buffer(
                    f"gid_children_{level}", torch.full((config.gid_tree_parents(level), k), -1, dtype=torch.long)
                )
        self.code_heads = (
            None
            if config.tie_code_heads
            else nn.ModuleList(nn.Linear(config.d_model, k, bias=False) for k in config.codebook_sizes)
        )
        if self.encoder.item_position_embeddings is not None:
            self.encoder.item_position_embeddings._colarec_small_init = True  # added to every token
        use_fast_dropout(self)
        self.post_init()
        if config.node_scoped_codes:  # a node's row depends on the whole prefix: generate() feeds it every step
            self.generation_config.use_cache = False

    # ------------------------------------------------------------------ HF plumbing
    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.stack.embed_tokens = value

    def get_encoder(self, modality=None) -> ColaRecEncoder:
        return self.encoder

    def get_decoder(self) -> T5Stack:
        return self.decoder

    # ------------------------------------------------------------------ building blocks
    def encode(self, input_ids, attention_mask=None, item_slot_ids=None, user_slot_ids=None, item_position_ids=None, task=None):
        """Encoder states [B, S, d] and the attention mask used."""
        attention_mask = self.encoder.attention_mask(input_ids, attention_mask)
        out = self.encoder(input_ids, attention_mask, item_slot_ids, user_slot_ids, item_position_ids, task)
        return out.last_hidden_state, attention_mask

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """h(X): mean of the unpadded states, the last unpadded state, or the prompt position's state."""
        mode = self.config.pooling
        if mode == "first":
            return hidden[:, 0]
        mask = attention_mask.to(hidden.dtype)
        if mode == "mean":
            return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        last = attention_mask.long().sum(1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    # ------------------------------------------------------------------ GID tree (node-scoped codes)
    def set_gid_tree(self, children: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> None:
        """Fill the tree buffers from ``SemanticIdTrie.dense_level`` (one [parents, K] table a level)."""
        if not self.config.node_scoped_codes:
            raise InvalidInputError("set_gid_tree: this model's code embeddings are per level, not per tree node")
        for level, table in enumerate(children):
            buffer = self.gid_children(level)
            if tuple(table.shape) != tuple(buffer.shape):
                raise InvalidInputError(
                    f"set_gid_tree: level {level} table has shape {tuple(table.shape)}, the model expects {tuple(buffer.shape)}"
                )
            if table.numel() and int(table.max()) >= self.code_embeddings[level].num_embeddings:
                raise InvalidInputError(f"set_gid_tree: level {level} names node {int(table.max())}, beyond its embedding table")
            buffer.copy_(table)

    def gid_children(self, level: int) -> torch.Tensor:
        return getattr(self, f"gid_children_{level}")

    def prefix_nodes(self, codes: torch.LongTensor) -> torch.LongTensor:
        """Tree node of every prefix of ``codes`` [N, n]: column ``t`` is the level-``t`` node of ``codes[:, :t+1]`` (-1: no such node)."""
        parent = codes.new_zeros(codes.shape[0])
        nodes = []
        for level in range(codes.shape[1]):
            table = self.gid_children(level)
            code = codes[:, level]
            node = table[parent.clamp(min=0), code.clamp(0, table.shape[1] - 1)]
            parent = torch.where((parent >= 0) & (code >= 0) & (code < table.shape[1]), node, torch.full_like(node, -1))
            nodes.append(parent)
        return torch.stack(nodes, 1) if nodes else codes.new_zeros((codes.shape[0], 0))

    def _parents(self, level: int, nodes: torch.LongTensor) -> torch.LongTensor:
        """The node whose children level ``level`` chooses among, given ``prefix_nodes`` of the prefix."""
        return nodes[:, level - 1] if level > 0 else nodes.new_zeros(nodes.shape[0])

    def _read_code(self, level: int, codes: torch.LongTensor, nodes: torch.LongTensor | None) -> torch.Tensor:
        """Decoder input that reads the level-``level`` code: its code row, or the prefix node's row."""
        if nodes is None:
            return self.code_embeddings[level](codes)
        return self.code_embeddings[level](nodes[:, level].clamp(min=0))

    def level_scores(self, level: int, decoder_states: torch.Tensor, parents: torch.LongTensor | None = None) -> torch.Tensor:
        """Unnormalised scores over level ``level``'s codes for decoder states [N, d].

        Node-scoped codes need ``parents`` [N] (the current node of each row); codes that are no
        child of it get the dtype's lowest value.
        """
        if self.code_heads is not None:
            return self.code_heads[level](decoder_states)
        states = decoder_states * self.config.d_model**-0.5
        if not self.config.node_scoped_codes:
            return states @ embedding_table(self.code_embeddings[level]).T
        if parents is None:
            raise InvalidInputError("node-scoped code scores need the parent node of every row")
        children = self.gid_children(level)[parents.clamp(min=0)]
        children = torch.where((parents >= 0)[:, None], children, torch.full_like(children, -1))
        if self.config.node_scoring == "item_logsumexp" and level < self.config.num_levels - 1:
            scores = self._item_logsumexp_scores(level, states, children)
        else:
            rows = self.code_embeddings[level](children.clamp(min=0))  # [N, K, d]
            scores = torch.einsum("nd,nkd->nk", states, rows.to(states.dtype))
        return scores.masked_fill(children < 0, torch.finfo(scores.dtype).min)

    def _item_logsumexp_scores(self, level: int, states: torch.Tensor, children: torch.LongTensor) -> torch.Tensor:
        """Score of each child node = log-sum-exp of the scores of the items under it (``node_scoring: item_logsumexp``).

        Rows are scored in chunks so that the [rows, items] scores and the [rows, K, M] gather stay within ~64M entries.
        """
        members = self.node_members(level)  # [nodes, M] item rows, -1 padding
        items = embedding_table(self.code_embeddings[-1]).to(states.dtype)
        lowest = torch.finfo(states.dtype).min
        chunk = max(1, (1 << 26) // max(items.shape[0], children.shape[1] * members.shape[1], 1))
        out = []
        for start in range(0, states.shape[0], chunk):
            item_scores = states[start : start + chunk] @ items.T  # [n, items]
            child_members = members[children[start : start + chunk].clamp(min=0)]  # [n, K, M]
            gathered = item_scores.gather(1, child_members.clamp(min=0).flatten(1)).view(child_members.shape)
            out.append(torch.logsumexp(gathered.masked_fill(child_members < 0, lowest), dim=-1))
        return torch.cat(out)

    def node_members(self, level: int) -> torch.LongTensor:
        """[nodes of ``level``, M]: the item rows under each node (-1 padding), derived from the tree buffers.

        Cached against the buffers' storage and versions, so ``set_gid_tree`` or loading a checkpoint refreshes it.
        """
        buffers = [self.gid_children(l) for l in range(self.config.num_levels)]
        key = (level, tuple((b.data_ptr(), b._version) for b in buffers), buffers[0].device)
        cache = self._node_member_cache
        if key not in cache:
            if len(cache) >= self.config.num_levels:  # stale versions of the tree
                cache.clear()
            last = self.config.num_levels - 1
            ancestor = torch.arange(self.config.num_items, device=key[2])  # item row -> its node at the current level
            for upper in range(last, level, -1):
                table = self.gid_children(upper)  # [nodes of upper - 1, K] -> nodes of ``upper``
                parent_of = torch.full((self.code_embeddings[upper].num_embeddings,), -1, dtype=torch.long, device=key[2])
                valid = table >= 0
                parent_of[table[valid]] = torch.arange(table.shape[0], device=key[2])[:, None].expand_as(table)[valid]
                ancestor = parent_of[ancestor.clamp(min=0)].masked_fill(ancestor < 0, -1)
            nodes = self.code_embeddings[level].num_embeddings
            counts = torch.bincount(ancestor[ancestor >= 0], minlength=nodes)
            order = torch.argsort(ancestor.masked_fill(ancestor < 0, nodes), stable=True)
            width = max(int(counts.max()) if counts.numel() else 1, 1)
            members = torch.full((nodes, width), -1, dtype=torch.long, device=key[2])
            sorted_nodes = ancestor[order]
            keep = sorted_nodes >= 0
            starts = torch.cumsum(counts, 0) - counts
            slots = torch.arange(order.shape[0], device=key[2]) - starts[sorted_nodes.clamp(min=0)]
            members[sorted_nodes[keep], slots[keep]] = order[keep]
            cache[key] = members
        return cache[key]

    def freeze_item_embeddings(self) -> None:
        """Stop training the per-item rows: the atom-item slots and, with node-scoped codes, the last level's rows."""
        self.encoder.item_embeddings.weight.requires_grad_(False)
        if self.config.node_scoped_codes:
            self.code_embeddings[-1].weight.requires_grad_(False)

    def set_item_tables(self, tables: torch.Tensor) -> None:
        """Frozen per-item rows to train against, ``tables`` [n, items, d_model] (cross-fitting): a training batch
        with ``item_table = k`` reads table ``k`` as its atom-item slots and (node-scoped codes) item rows; eval
        mode and every state dict hold table 0, the rows the model ranks with.  The tables are not saved."""
        if self.encoder.item_embeddings.weight.requires_grad:
            raise InvalidInputError("item tables replace frozen item rows: call freeze_item_embeddings() first")
        expected = (self.config.num_items, self.config.d_model)
        if tables.dim() != 3 or tuple(tables.shape[1:]) != expected:
            raise InvalidInputError(f"item tables have shape {tuple(tables.shape)}; expected [n, {expected[0]}, {expected[1]}]")
        self.register_buffer("item_tables", tables.detach().float().contiguous(), persistent=False)
        self._use_item_table(0)

    @torch.no_grad()
    def _use_item_table(self, index: int) -> None:
        for name in self._item_row_names():
            self.get_parameter(name).data.copy_(self.item_tables[index])
        self._item_table_in_use = index

    def _item_row_names(self) -> list[str]:
        names = ["encoder.item_embeddings.weight"]
        if self.config.node_scoped_codes:
            names.append(f"code_embeddings.{len(self.code_embeddings) - 1}.weight")
        return names

    def train(self, mode: bool = True) -> "ColaRecForGenerativeRecommendation":
        super().train(mode)
        if not mode and getattr(self, "_item_table_in_use", 0):
            self._use_item_table(0)
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        state = super().state_dict(*args, **kwargs)
        if getattr(self, "_item_table_in_use", 0):  # mid-training on a fold's rows: save the rows it ranks with
            for name in self._item_row_names():
                key = kwargs.get("prefix", "") + name
                if key in state:
                    state[key] = self.item_tables[0].clone()
        return state

    def freeze_user_embeddings(self) -> None:
        """Stop training the user rows (the user slots of recommendation and indexing inputs)."""
        self.encoder.user_embeddings.weight.requires_grad_(False)

    def _start_embedding(self, batch: int) -> torch.Tensor:
        return embedding_rows(self.decoder.embed_tokens, 0, batch).unsqueeze(1)

    def _prefix_embeddings(self, codes: torch.Tensor, nodes: torch.LongTensor | None = None) -> torch.Tensor:
        """Decoder inputs for the GID prefix ``codes`` [B, n]: start, E_0(c_0), ..., E_{n-1}(c_{n-1})
        (with node-scoped codes, ``nodes`` = ``prefix_nodes(codes)``: the rows of the prefix's nodes)."""
        parts = [self._start_embedding(codes.shape[0])]
        for level in range(codes.shape[1]):
            parts.append(self._read_code(level, codes[:, level], nodes).unsqueeze(1))
        return torch.cat(parts, dim=1)

    def _check_codes(self, codes: torch.Tensor, what: str) -> None:
        for level in range(codes.shape[1]):
            column = codes[:, level]
            valid = column[column != -100]
            if valid.numel() and (valid.min() < 0 or valid.max() >= self.config.codebook_sizes[level]):
                raise InvalidInputError(
                    f"{what}: level {level} codes must lie in [0, {self.config.codebook_sizes[level]})"
                )

    def generation_loss(self, encoder_hidden_states, encoder_attention_mask, labels) -> torch.Tensor:
        """Mean cross-entropy of every GID code given its prefix (teacher forcing); -100 is ignored."""
        if labels.dim() != 2 or labels.shape[1] != self.config.num_levels:
            raise InvalidInputError(f"labels must be [batch, {self.config.num_levels}] GID codes, got {tuple(labels.shape)}")
        self._check_codes(labels, "labels")
        prefix = labels[:, :-1].clamp(min=0)
        nodes = self.prefix_nodes(prefix) if self.config.node_scoped_codes else None
        inputs = self._prefix_embeddings(prefix, nodes)
        states = self.decoder(
            inputs_embeds=inputs,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            use_cache=False,
        ).last_hidden_state
        total = states.new_zeros(())
        count = 0
        for level in range(self.config.num_levels):
            target = labels[:, level]
            parents = self._parents(level, nodes) if nodes is not None else None
            scores = self.level_scores(level, states[:, level], parents)
            total = total + F.cross_entropy(scores, target, ignore_index=-100, reduction="sum")
            count += int((target != -100).sum())
        return total / max(count, 1)

    # ------------------------------------------------------------------ level-decoding protocol
    def encode_for_decoding(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        item_slot_ids: torch.LongTensor | None = None,
        user_slot_ids: torch.LongTensor | None = None,
        item_position_ids: torch.LongTensor | None = None,
        task: int | str | torch.Tensor = "rec",
        **unused,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``encode``'s states through the packed inference pass (zeros at padded positions)."""
        embeds = self.encoder.embed(input_ids, item_slot_ids, user_slot_ids, item_position_ids, task)
        attention_mask = self.encoder.attention_mask(input_ids, attention_mask)
        return encode_packed(self.encoder.stack, embeds, attention_mask), attention_mask

    def level_logits(
        self,
        level: int,
        prev_codes: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        past_key_values: T5LevelCache | None = None,
    ) -> tuple[torch.Tensor, T5LevelCache]:
        """Log-probabilities over level ``level``'s codes given the GID prefixes ``prev_codes`` [n * B, level].

        Encoder states hold one row per user (its n prefix rows consecutive).  With
        ``past_key_values`` (the cache returned by the previous level) only the newest position is
        run; without it the whole prefix is.
        """
        if not 0 <= level < self.config.num_levels:
            raise InvalidInputError(f"level must lie in [0, {self.config.num_levels}), got {level}")
        nodes = self.prefix_nodes(prev_codes) if self.config.node_scoped_codes else None
        hidden, cache = decode_level(
            self.decoder, level, prev_codes, encoder_hidden_states, encoder_attention_mask, past_key_values,
            start_embeds=lambda batch: self._start_embedding(batch)[:, 0],
            code_embeds=lambda codes, lvl: self._read_code(lvl, codes, nodes),
            max_positions=self.config.num_levels,
        )
        parents = self._parents(level, nodes) if nodes is not None else None
        return torch.log_softmax(self.level_scores(level, hidden, parents).float(), dim=-1), cache

    # ------------------------------------------------------------------ flat decoder vocabulary
    def _flat_codes(self, decoder_input_ids: torch.LongTensor, start_position: int) -> torch.LongTensor:
        """Level-local codes of the flat ids after the start position (at most ``num_levels`` of them)."""
        cfg = self.config
        columns = []
        for step in range(decoder_input_ids.shape[1]):
            level = start_position + step - 1
            if 0 <= level < cfg.num_levels:
                codes = decoder_input_ids[:, step] - cfg.code_offset(level)
                columns.append(codes.clamp(0, cfg.codebook_sizes[level] - 1))
        if not columns:
            return decoder_input_ids.new_zeros((decoder_input_ids.shape[0], 0))
        return torch.stack(columns, 1)

    def _flat_to_embeddings(self, decoder_input_ids: torch.LongTensor, start_position: int, nodes=None) -> torch.Tensor:
        """Embed flat decoder ids; position p (absolute) must hold the start id (p = 0) or a level p-1 code."""
        cfg = self.config
        batch, length = decoder_input_ids.shape
        parts = []
        for step in range(length):
            position = start_position + step
            ids = decoder_input_ids[:, step]
            if position == 0:
                parts.append(self._start_embedding(batch))
                continue
            level = position - 1
            if level >= cfg.num_levels:
                parts.append(self._start_embedding(batch) * 0)  # past the last level: never scored
                continue
            codes = (ids - cfg.code_offset(level)).clamp(0, cfg.codebook_sizes[level] - 1)
            parts.append(self._read_code(level, codes, nodes).unsqueeze(1))
        return torch.cat(parts, dim=1)

    def _flat_logits(self, states: torch.Tensor, start_position: int, nodes=None) -> torch.Tensor:
        """[B, T, decoder_vocab] with each position's level slice filled and -inf elsewhere."""
        cfg = self.config
        logits = states.new_full((*states.shape[:2], cfg.decoder_vocab_size), float("-inf"))
        for step in range(states.shape[1]):
            level = start_position + step
            if level < cfg.num_levels:
                off = cfg.code_offset(level)
                parents = self._parents(level, nodes) if nodes is not None else None
                logits[:, step, off : off + cfg.codebook_sizes[level]] = self.level_scores(level, states[:, step], parents)
            else:
                logits[:, step, cfg.eos_token_id] = 0.0
        return logits

    def codes_to_decoder_ids(self, codes: torch.LongTensor) -> torch.LongTensor:
        """Level-local GID codes [B, L] -> flat decoder ids (for ``generate()`` outputs and labels)."""
        offsets = torch.tensor([self.config.code_offset(l) for l in range(codes.shape[1])], device=codes.device)
        return codes + offsets

    def decoder_ids_to_codes(self, decoder_ids: torch.LongTensor) -> torch.LongTensor:
        """Inverse of ``codes_to_decoder_ids``; drops a leading start id when present."""
        if decoder_ids.shape[1] == self.config.num_levels + 1:
            decoder_ids = decoder_ids[:, 1:]
        decoder_ids = decoder_ids[:, : self.config.num_levels]
        offsets = torch.tensor([self.config.code_offset(l) for l in range(decoder_ids.shape[1])], device=decoder_ids.device)
        return decoder_ids - offsets

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        item_slot_ids: torch.LongTensor | None = None,
        user_slot_ids: torch.LongTensor | None = None,
        item_position_ids: torch.LongTensor | None = None,
        task: int | str | torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: Cache | None = None,
        past_key_values: Cache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> ColaRecOutput:
        """Three uses.

        * Training batch: prefixed tensors (``rec_input_ids``, ``index_labels``, ``pos_item_slot_ids`` ...;
          prefixes in ``GROUPS``, fields in ``FIELDS``) -> ``loss`` and ``loss_components``.
        * One task: ``input_ids`` (+ slots, ``task``) and ``labels`` [B, levels] of GID codes -> its
          generation loss.
        * ``generate()``: ``decoder_input_ids`` in the flat decoder vocabulary -> ``logits`` and ``cache``.
        """
        item_table = kwargs.pop("item_table", None)
        if item_table is not None:
            if getattr(self, "item_tables", None) is None:
                raise InvalidInputError("the training batch names an item_table but the model has no item tables")
            self._use_item_table(int(item_table))
        groups, unknown = _split_groups(kwargs)
        if unknown:
            raise InvalidInputError(f"ColaRec forward got unexpected inputs {sorted(unknown)}")
        if groups:
            return self._multitask_forward(groups)
        cache = cache if cache is not None else past_key_values
        if encoder_outputs is None:
            if input_ids is None:
                raise InvalidInputError("ColaRec forward needs input_ids, encoder_outputs or prefixed task tensors")
            hidden, attention_mask = self.encode(input_ids, attention_mask, item_slot_ids, user_slot_ids, item_position_ids, task)
        else:
            hidden = encoder_outputs[0] if not isinstance(encoder_outputs, BaseModelOutput) else encoder_outputs.last_hidden_state
            if attention_mask is None:
                attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        if decoder_input_ids is None:
            if labels is None:
                raise InvalidInputError("ColaRec forward needs labels (GID codes) or decoder_input_ids")
            loss = self.generation_loss(hidden, attention_mask, labels)
            return ColaRecOutput(loss=loss, encoder_last_hidden_state=hidden)
        start = cache.get_seq_length() if cache is not None else 0
        nodes = None
        if self.config.node_scoped_codes:
            # a node's row depends on the whole prefix, which a cached step does not see
            if cache is not None:
                raise InvalidInputError("node-scoped codes decode with the whole GID prefix: call generate(use_cache=False)")
            nodes = self.prefix_nodes(self._flat_codes(decoder_input_ids, 0))
            cache = None
        elif cache is None and (use_cache if use_cache is not None else self.config.use_cache):
            from transformers.cache_utils import DynamicCache, EncoderDecoderCache

            cache = EncoderDecoderCache(DynamicCache(config=self.decoder.config), DynamicCache(config=self.decoder.config))
        embeds = self._flat_to_embeddings(decoder_input_ids, start, nodes)
        out = self.decoder(
            inputs_embeds=embeds,
            encoder_hidden_states=hidden,
            encoder_attention_mask=attention_mask,
            cache=cache,
            use_cache=cache is not None,
        )
        logits = self._flat_logits(out.last_hidden_state, start, nodes)
        return ColaRecOutput(logits=logits, cache=out.cache, encoder_last_hidden_state=hidden)

    def _multitask_forward(self, groups: dict[str, dict[str, torch.Tensor]]) -> ColaRecOutput:
        weights = self.config.loss_weights
        encoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

        def enc(name: str) -> tuple[torch.Tensor, torch.Tensor]:
            if name not in encoded:
                g = groups[name]
                if "input_ids" not in g:
                    raise InvalidInputError(f"training batch has {name}_* tensors but no {name}_input_ids")
                encoded[name] = self.encode(
                    g["input_ids"], g.get("attention_mask"), g.get("item_slot_ids"), g.get("user_slot_ids"),
                    g.get("item_position_ids"), GROUPS[name],
                )
            return encoded[name]

        def pooled(name: str) -> torch.Tensor:
            hidden, mask = enc(name)
            return self.pool(hidden, mask)

        components: dict[str, torch.Tensor] = {}
        if weights["rec"] > 0 and "labels" in groups.get("rec", {}):
            components["rec"] = self.generation_loss(*enc("rec"), groups["rec"]["labels"])
        if weights["index"] > 0:
            terms, counts = [], []
            for name in INDEXING_GROUPS:
                if "labels" in groups.get(name, {}):
                    labels = groups[name]["labels"]
                    n = int((labels != -100).sum())
                    terms.append(self.generation_loss(*enc(name), labels) * n)
                    counts.append(n)
            if terms:
                components["index"] = torch.stack(terms).sum() / max(sum(counts), 1)
        if weights["bpr"] > 0 and all(n in groups for n in ("rec", "pos", "neg")):
            user, pos, neg = pooled("rec"), pooled("pos"), pooled("neg")
            components["bpr"] = -F.logsigmoid((user * pos).sum(-1) - (user * neg).sum(-1)).mean()
        if weights["contrastive"] > 0 and all(n in groups for n in ("pos", "sib", "neg")):
            anchor, sib, neg = pooled("pos"), pooled("sib"), pooled("neg")
            components["contrastive"] = -F.logsigmoid((anchor * (sib - neg)).sum(-1)).mean()
        if not components:
            raise InvalidInputError(
                f"the training batch (groups {sorted(groups)}) feeds no loss with a positive weight {weights}"
            )
        loss = sum(weights[name] * value for name, value in components.items())
        return ColaRecOutput(loss=loss, loss_components=components)


def _split_groups(kwargs: dict) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    groups: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in kwargs.items():
        prefix, _, field = key.partition("_")
        if prefix in GROUPS and field in FIELDS:
            groups.setdefault(prefix, {})[field] = value
        elif key in ("return_dict", "output_attentions", "output_hidden_states", "num_items_in_batch") or value is None:
            continue
        else:
            unknown.append(key)
    return groups, unknown


__all__ = ["ColaRecEncoder", "ColaRecForGenerativeRecommendation", "ColaRecOutput", "ColaRecPreTrainedModel", "FIELDS", "GROUPS"]
