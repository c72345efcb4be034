"""ColaRec's input path: ``ColaRecProcessor`` (histories -> item-content inputs), training features and collator.

An item's content is ``[ITEM_SLOT, text tokens]``; the model replaces the slot's word embedding by
the item's learned atom embedding (``item_slot_ids`` says which item).

* Recommendation input ``X_u = [TASK, c_i1, c_i2, ...]`` (``ColaRecProcessor``): the user's *other* items,
  most recent last, never the target (``ColaRecCollator`` drops the target even if a row lists it).
  With ``user_slot`` it is ``[TASK, USER_SLOT, c_i1, ...]``: the user's own learned embedding, for
  users seen in training (others get no slot).
* Indexing input ``X_i = [TASK, c_i, USER_SLOT × n]``: the item's content and up to
  ``users_per_item`` users who interacted with it in training (never the row's own user).
* Training batch for a row (user u, target i): ``rec_*`` (X_u, labels = GID(i)), ``pos_*`` (X_i,
  labels GID(i)), ``neg_*`` (X_j, labels GID(j)) with j an item u never saw in training and,
  whenever one exists, with a different first GID code, and ``sib_*`` (an item sharing i's first
  two GID codes, else its first code, else i itself) for the contrastive term.
* Index-only rows (``{"item_id": ...}``, from ``index_dataset``) give ``index_*`` tensors.
* Rows with an ``item_table`` (cross-fitted item rows) pass it on as the batch's ``item_table``; a batch
  holds one table's rows (the trainer batches them so).

Negatives, sibling items and user slots are drawn in the collator, so they change every epoch.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from datasets import Dataset

from ...errors import CheckpointMismatchError, DataFormatError, InvalidInputError, UnknownItemError
from ...io_utils import atomic_save_tensors
from ...semantic_ids.id_table import SemanticIdTable
from ..genrec_tokenizer.tokenization_genrec import GenRecTokenizer
from ..processing_utils import HUB_KWARGS, PROCESSOR_FILE, GenRecProcessor, check_tokenizer_matches_config, pad_rows, resolve_file

# item-position ids (ColaRec's "info position"): 0 = task / end / padding, 1 = item slot,
# 2 = user slots, 3... = text tokens inside the item
POS_NONE, POS_ITEM_SLOT, POS_USER_SLOT, POS_TEXT = 0, 1, 2, 3
COLAREC_TOKENS = ("<task>", "<item>", "<user>")  # task prompt and the item / user slot placeholders


@dataclass
class ColaRecSpecialTokens:
    """Token ids of the placeholders; their word embeddings are replaced inside the model."""

    pad_token_id: int
    task_token_id: int
    item_slot_token_id: int
    user_slot_token_id: int
    eos_token_id: int | None = None

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        task_token: str = "<task>",
        item_slot_token: str = "<item>",
        user_slot_token: str = "<user>",
        pad_token: str = "<pad>",
        eos_token: str | None = "</s>",
    ) -> "ColaRecSpecialTokens":
        """Look the placeholder tokens up in a ``tokenizers.Tokenizer`` or a transformers tokenizer."""

        def lookup(token: str) -> int:
            if hasattr(tokenizer, "token_to_id"):
                idx = tokenizer.token_to_id(token)
            else:
                idx = tokenizer.convert_tokens_to_ids(token)
                if idx is not None and idx == getattr(tokenizer, "unk_token_id", None) and token != tokenizer.unk_token:
                    idx = None
            if idx is None:
                raise InvalidInputError(f"the tokenizer has no token {token!r} (needed by ColaRec inputs)")
            return int(idx)

        return cls(
            pad_token_id=lookup(pad_token),
            task_token_id=lookup(task_token),
            item_slot_token_id=lookup(item_slot_token),
            user_slot_token_id=lookup(user_slot_token),
            eos_token_id=lookup(eos_token) if eos_token is not None else None,
        )


@dataclass
class ColaRecFeatureConfig:
    """Sequence limits (the reference code: 20-40 items a user, 30-50 tokens an item, 256-500 in all)."""

    max_items_per_user: int = 20
    max_tokens_per_item: int = 30
    max_length: int = 256
    users_per_item: int = 1
    user_slot: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_items_per_user", "max_tokens_per_item", "max_length"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"ColaRecFeatureConfig.{name} must be positive, got {getattr(self, name)}")
        if self.users_per_item < 0:
            raise InvalidInputError(f"ColaRecFeatureConfig.users_per_item must be >= 0, got {self.users_per_item}")
        if self.max_length < self.max_tokens_per_item + 2 + self.users_per_item:
            raise InvalidInputError(
                f"max_length {self.max_length} cannot hold one item ({self.max_tokens_per_item} tokens) "
                f"plus the task token and {self.users_per_item} user slots"
            )


# ---------------------------------------------------------------------------------------- text
def tokenize_item_texts(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each text (no special tokens), cut to ``max_tokens``.

    Accepts a ``tokenizers.Tokenizer`` (``encode_batch``), a transformers tokenizer (``__call__``)
    or any object whose ``encode(text)`` returns ids.
    """
    texts = list(texts)
    if hasattr(tokenizer, "encode_batch"):
        ids = [enc.ids for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]
    elif callable(tokenizer):
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    elif hasattr(tokenizer, "encode"):
        ids = [tokenizer.encode(t) for t in texts]
    else:
        raise InvalidInputError(f"cannot tokenize with {type(tokenizer).__name__}: needs encode_batch, __call__ or encode")
    return [list(map(int, row))[:max_tokens] for row in ids]


# ---------------------------------------------------------------------------------------- processor
ITEM_TOKENS_FILE = "colarec_item_tokens.safetensors"


class ColaRecProcessor(GenRecProcessor):
    """Histories -> ColaRec encoder inputs ``[TASK, c_i1, c_i2, ...]`` with ``c_i = [ITEM_SLOT, text tokens]``.

    Item rows follow the semantic-ID table (row ``r`` of the model's atom-item table is
    ``table.item_ids[r]``); ``item_token_ids[r]`` are the text tokens of that item.  The processor
    carries these tokens, so a saved checkpoint recommends without the dataset.
    """

    def __init__(
        self,
        table: SemanticIdTable,
        item_token_ids: Sequence[Sequence[int]],
        special: ColaRecSpecialTokens,
        config: ColaRecFeatureConfig | None = None,
        tokenizer: Any = None,
        user_ids: Sequence[int] | None = None,
    ) -> None:
        self.table = table
        self.config = config or ColaRecFeatureConfig()
        self.special = special
        self.tokenizer = tokenizer
        if len(item_token_ids) != table.num_items:
            raise InvalidInputError(f"{len(item_token_ids)} tokenised items for a table of {table.num_items} items")
        cap = self.config.max_tokens_per_item
        self.item_tokens = [list(map(int, toks))[:cap] for toks in item_token_ids]
        if self.config.user_slot and user_ids is None:
            raise InvalidInputError("a ColaRec processor with user_slot needs the training users (user_ids) to number them")
        # the model's user rows: training users, sorted (ColaRecFeatures and LightGCN number them alike)
        self.user_ids = [int(u) for u in user_ids] if user_ids is not None else None
        self._user_row = {u: r for r, u in enumerate(self.user_ids)} if self.user_ids is not None else {}

    @classmethod
    def from_catalogue(
        cls, tokenizer: Any, texts: Sequence[str], config: ColaRecFeatureConfig | None = None, user_ids: Sequence[int] | None = None
    ) -> "ColaRecProcessor":
        """A processor whose item contents are ``texts`` (one per row of the tokenizer's ID table), tokenised.

        ``user_ids``: the training users in the model's user-row order (needed with ``user_slot``).
        """
        config = config or ColaRecFeatureConfig()
        special = ColaRecSpecialTokens.from_tokenizer(tokenizer, *COLAREC_TOKENS)
        tokens = tokenize_item_texts(tokenizer, texts, config.max_tokens_per_item)
        return cls(tokenizer.semantic_id_table, tokens, special, config, tokenizer=tokenizer, user_ids=user_ids)

    # ------------------------------------------------------------------ lookups
    @property
    def semantic_id_table(self) -> SemanticIdTable:
        return self.table

    @property
    def item_ids(self) -> list[int]:
        return self.table.item_ids

    @property
    def num_items(self) -> int:
        return self.table.num_items

    def item_row(self, item_id: int) -> int:
        return self.table.row_of(item_id)

    def user_slot_row(self, user_id: int | None) -> int | None:
        """The user row that fills ``X_u``'s user slot; ``None`` without ``user_slot`` or for a user unseen in training."""
        if not self.config.user_slot or user_id is None:
            return None
        return self._user_row.get(int(user_id))

    # ------------------------------------------------------------------ sequences
    def _item_content(self, row: int) -> tuple[list[int], list[int], list[int]]:
        text = self.item_tokens[row]
        ids = [self.special.item_slot_token_id] + text
        slots = [row] + [-1] * len(text)
        positions = [POS_ITEM_SLOT] + [POS_TEXT + p for p in range(len(text))]
        return ids, slots, positions

    def user_input(self, history_rows: Sequence[int], user_row: int | None = None) -> dict[str, list[int]]:
        """X_u for item rows ``history_rows`` (oldest first); the oldest items go first when too long.

        ``user_row`` (a model user row) adds the user's slot right after the task token.
        """
        cfg = self.config
        budget = cfg.max_length - 1 - (self.special.eos_token_id is not None) - (user_row is not None)
        contents = []
        used = 0
        for row in list(history_rows)[-cfg.max_items_per_user :][::-1]:  # newest first
            content = self._item_content(row)
            if used + len(content[0]) > budget:
                break
            contents.append(content)
            used += len(content[0])
        ids, slots, positions = [self.special.task_token_id], [-1], [POS_NONE]
        if user_row is not None:
            ids, slots, positions = ids + [self.special.user_slot_token_id], slots + [-1], positions + [POS_USER_SLOT]
        for c_ids, c_slots, c_pos in reversed(contents):
            ids += c_ids
            slots += c_slots
            positions += c_pos
        user_slots = None if user_row is None else [-1, int(user_row)] + [-1] * (len(ids) - 2)
        return self._finish(ids, slots, positions, user_slots)

    def item_input(self, row: int, user_rows: Sequence[int] = ()) -> dict[str, list[int]]:
        """X_i: the item's content then one slot per user row."""
        c_ids, c_slots, c_pos = self._item_content(row)
        users = list(user_rows)
        ids = [self.special.task_token_id] + c_ids + [self.special.user_slot_token_id] * len(users)
        slots = [-1] + c_slots + [-1] * len(users)
        positions = [POS_NONE] + c_pos + [POS_USER_SLOT] * len(users)
        user_slots = [-1] * (1 + len(c_ids)) + users
        return self._finish(ids, slots, positions, user_slots)

    def _finish(self, ids, slots, positions, user_slots) -> dict[str, list[int]]:
        if self.special.eos_token_id is not None:
            ids = ids + [self.special.eos_token_id]
            slots = slots + [-1]
            positions = positions + [POS_NONE]
            user_slots = user_slots + [-1] if user_slots is not None else None
        out = {"input_ids": ids, "item_slot_ids": slots, "item_position_ids": positions}
        if user_slots is not None:
            out["user_slot_ids"] = user_slots
        return out

    def stack(self, prefix: str, examples: list[dict[str, list[int]]], labels: list[list[int]] | None = None) -> dict:
        """Pad examples into the ``<prefix>input_ids`` / ``attention_mask`` / slot tensors the model reads."""
        pad = self.special.pad_token_id
        out = {
            f"{prefix}input_ids": pad_rows([e["input_ids"] for e in examples], pad),
            f"{prefix}attention_mask": pad_rows([[1] * len(e["input_ids"]) for e in examples], 0),
            f"{prefix}item_slot_ids": pad_rows([e["item_slot_ids"] for e in examples], -1),
            f"{prefix}item_position_ids": pad_rows([e["item_position_ids"] for e in examples], POS_NONE),
        }
        if any("user_slot_ids" in e for e in examples):
            out[f"{prefix}user_slot_ids"] = pad_rows([e.get("user_slot_ids", [-1] * len(e["input_ids"])) for e in examples], -1)
        if labels is not None:
            out[f"{prefix}labels"] = torch.as_tensor(labels, dtype=torch.long)
        return out

    def __call__(self, histories: Sequence[Sequence[int]], user_ids: Sequence[int | None] | None = None) -> dict[str, torch.Tensor]:
        """Encoder inputs for ``encode_for_decoding`` (user ids are not part of ColaRec's recommendation input)."""
        user_ids = self.check_batch(histories, user_ids)
        examples = []
        for i, history in enumerate(histories):
            if len(history) == 0:
                raise InvalidInputError(f"history {i}: empty history: at least one item is needed to recommend")
            examples.append(self.user_input([self.item_row(item) for item in history], self.user_slot_row(user_ids[i])))
        return self.stack("", examples)

    def check_model(self, config: Any) -> None:
        """Also gives a tokenizer saved without it the decoder's generation layout (``decode_items`` needs it)."""
        if self.tokenizer is None:
            return
        check_tokenizer_matches_config(config, self.tokenizer)
        wanted = list(config.generation_level_offsets)
        if "generation_level_offsets" not in self.tokenizer.init_kwargs:
            self.tokenizer.set_generation_layout(wanted, config.eos_token_id)
        elif self.tokenizer.generation_level_offsets != wanted:
            raise CheckpointMismatchError(
                f"the tokenizer's generation_level_offsets {self.tokenizer.generation_level_offsets} disagree with the "
                f"model's decoder vocabulary {wanted} (config.json)"
            )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"feature_config": asdict(self.config), "special_tokens": asdict(self.special)}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> list[str]:
        if self.tokenizer is None:
            raise InvalidInputError("a ColaRecProcessor built without its tokenizer cannot be saved")
        files = list(self.tokenizer.save_pretrained(save_directory))
        width = max((len(t) for t in self.item_tokens), default=0)
        tokens = torch.full((len(self.item_tokens), max(width, 1)), -1, dtype=torch.int32)
        for row, toks in enumerate(self.item_tokens):
            tokens[row, : len(toks)] = torch.as_tensor(toks, dtype=torch.int32)
        path = Path(save_directory) / ITEM_TOKENS_FILE
        tensors = {"item_tokens": tokens}
        if self.user_ids is not None:
            tensors["user_ids"] = torch.as_tensor(self.user_ids, dtype=torch.int64)
        atomic_save_tensors(path, tensors, metadata={"format": "hf_genrec.colarec_item_tokens/1"})
        return files + [str(path)] + super().save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "ColaRecProcessor":
        from safetensors.torch import load_file

        config = cls.read_config(pretrained_model_name_or_path, **kwargs)
        hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
        tokenizer = GenRecTokenizer.from_pretrained(pretrained_model_name_or_path, trust_remote_code=False, **hub_kwargs)
        path = resolve_file(pretrained_model_name_or_path, ITEM_TOKENS_FILE, **kwargs)
        if not path.is_file():
            raise DataFormatError("ColaRec item tokens not found", path=path)
        stored = load_file(str(path))
        if "item_tokens" not in stored:
            raise DataFormatError("ColaRec item tokens file lacks item_tokens", path=path)
        rows = [[int(t) for t in row if t >= 0] for row in stored["item_tokens"].tolist()]
        user_ids = stored["user_ids"].tolist() if "user_ids" in stored else None
        try:
            feature_config = ColaRecFeatureConfig(**config["feature_config"])
            special = ColaRecSpecialTokens(**config["special_tokens"])
        except (KeyError, TypeError) as exc:
            raise DataFormatError(f"invalid ColaRec processor config ({exc})", path=path.parent / PROCESSOR_FILE) from None
        if feature_config.user_slot and user_ids is None:
            raise DataFormatError("the processor config asks for user slots but no user_ids were saved", path=path)
        return cls(tokenizer.semantic_id_table, rows, special, feature_config, tokenizer=tokenizer, user_ids=user_ids)


# ---------------------------------------------------------------------------------------- training features
class ColaRecFeatures:
    """Who saw what in training: negatives, the users that index an item, GID-prefix siblings.

    User rows are the sorted training users.  Only training interactions are known here.
    """

    def __init__(self, processor: ColaRecProcessor, train_interactions: Sequence[tuple[int, int]]):
        self.processor = processor
        self.table = processor.table
        self.config = processor.config
        self.special = processor.special
        self.codes = np.asarray(self.table.codes, dtype=np.int64)
        self.user_ids = sorted({int(u) for u, _ in train_interactions})
        if processor.user_ids is not None and processor.user_ids != self.user_ids:
            raise InvalidInputError("the processor's user rows are not the sorted training users of these interactions")
        self._user_row = {u: r for r, u in enumerate(self.user_ids)}
        self.user_items: dict[int, set[int]] = defaultdict(set)  # user id -> item rows seen in training
        self.item_users: list[list[int]] = [[] for _ in range(self.table.num_items)]  # item row -> user rows
        for user, item in train_interactions:
            row = self.item_row(item)
            if row not in self.user_items[int(user)]:
                self.user_items[int(user)].add(row)
                self.item_users[row].append(self._user_row[int(user)])
        # GID prefix groups for the contrastive positives
        self._prefix_groups: list[dict[tuple, np.ndarray]] = []
        for depth in (1, 2):
            groups: dict[tuple, list[int]] = defaultdict(list)
            for row, code in enumerate(map(tuple, self.codes[:, :depth].tolist())):
                groups[code].append(row)
            self._prefix_groups.append({k: np.asarray(v) for k, v in groups.items()})

    @property
    def num_items(self) -> int:
        return self.table.num_items

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    def item_row(self, item_id: int) -> int:
        return self.table.row_of(item_id)

    def user_row(self, user_id: int) -> int:
        try:
            return self._user_row[int(user_id)]
        except KeyError:
            raise UnknownItemError(f"user {user_id!r} has no training interaction, so no user embedding") from None

    def labels(self, item_row: int) -> list[int]:
        return self.codes[item_row].tolist()

    def train_dataset(self, rows: Dataset, min_history: int = 1) -> Dataset:
        """Training rows ``{user_id, history, target}`` from a split with ``history`` / ``targets``.

        One row per target; the target is removed from its own history; rows whose history is
        shorter than ``min_history`` are dropped.
        """
        def expand(batch):
            out = {"user_id": [], "history": [], "target": []}
            for user, history, targets in zip(batch["user_id"], batch["history"], batch["targets"]):
                for target in targets:
                    clean = [i for i in history if i != target]
                    if len(clean) >= min_history:
                        out["user_id"].append(user)
                        out["history"].append(clean)
                        out["target"].append(target)
            return out

        return rows.map(expand, batched=True, remove_columns=rows.column_names, desc="ColaRec training rows")

    def index_dataset(self) -> Dataset:
        """One indexing row ``{item_id}`` per catalogue item."""
        return Dataset.from_dict({"item_id": list(self.table.item_ids)})


# ---------------------------------------------------------------------------------------- collator
class ColaRecCollator:
    """Pads ColaRec examples into the prefixed tensors ``ColaRecForGenerativeRecommendation`` reads.

    Rows with ``target`` are recommendation rows (``rec_``/``pos_``/``neg_``/``sib_`` groups; the
    ``with_*`` flags drop groups a run does not need); rows with only ``item_id`` are indexing
    rows (``index_`` group).  Evaluation batches come from ``EvalCollator(processor)``.
    """

    def __init__(
        self,
        features: ColaRecFeatures,
        with_pos_neg: bool = True,
        with_sibling: bool = True,
        label_item_inputs: bool = True,
        seed: int | None = None,
    ):
        self.features = features
        self.with_pos_neg = with_pos_neg
        self.with_sibling = with_sibling and with_pos_neg
        self.label_item_inputs = label_item_inputs
        self.seed = features.config.seed if seed is None else seed
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:  # one stream per DataLoader worker
            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng([self.seed, info.id if info is not None else 0])
        return self._rng

    # ------------------------------------------------------------------ sampling
    def sample_users(self, item_row: int, exclude_user_row: int | None = None) -> list[int]:
        k = self.features.config.users_per_item
        users = [u for u in self.features.item_users[item_row] if u != exclude_user_row]
        if k == 0 or not users:
            return []
        if len(users) <= k:
            return users
        return [users[i] for i in self.rng.choice(len(users), size=k, replace=False)]

    def sample_negative(self, user_id: int, target_row: int, tries: int = 50) -> int:
        """An item row the user never saw in training, preferably outside the target's first-level cluster."""
        seen = self.features.user_items.get(int(user_id), set())
        n = self.features.num_items
        if len(seen) >= n:
            raise InvalidInputError(f"user {user_id} saw every item in training: no negative exists")
        first = self.features.codes[target_row, 0]
        fallback = None
        for _ in range(tries):
            row = int(self.rng.integers(n))
            if row in seen:
                continue
            if self.features.codes[row, 0] != first:
                return row
            fallback = row if fallback is None else fallback
        if fallback is not None:
            return fallback
        unseen = np.setdiff1d(np.arange(n), np.fromiter(seen, dtype=np.int64))
        return int(self.rng.choice(unseen))

    def sample_sibling(self, row: int) -> int:
        """Another item sharing the first two GID codes, else the first code, else the item itself."""
        code = self.features.codes[row]
        for depth in (2, 1):
            group = self.features._prefix_groups[depth - 1][tuple(code[:depth].tolist())]
            if len(group) > 1:
                while True:
                    pick = int(group[self.rng.integers(len(group))])
                    if pick != row:
                        return pick
        return row

    # ------------------------------------------------------------------ batching
    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        tables = {r["item_table"] for r in rows if "item_table" in r}
        if len(tables) > 1:
            raise InvalidInputError(f"a training batch mixes item tables {sorted(tables)}: batch rows by their item_table")
        batch = self._collate(rows)
        if tables:
            batch["item_table"] = torch.tensor(tables.pop())
        return batch

    def _collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        f = self.features
        rec_rows = [r for r in rows if "target" in r]
        index_rows = [r for r in rows if "target" not in r and "item_id" in r]
        if len(rec_rows) + len(index_rows) != len(rows):
            raise InvalidInputError("ColaRecCollator rows need 'target' (recommendation) or 'item_id' (indexing)")
        batch: dict[str, torch.Tensor] = {}
        if rec_rows:
            rec, pos, neg, sib = [], [], [], []
            rec_labels, pos_labels, neg_labels = [], [], []
            for r in rec_rows:
                target = f.item_row(r["target"])
                history = [f.item_row(i) for i in r["history"] if i != r["target"]]  # never leak the target
                user_row = f._user_row.get(int(r["user_id"]))
                rec.append(f.processor.user_input(history, user_row if f.config.user_slot else None))
                rec_labels.append(f.labels(target))
                if self.with_pos_neg:
                    negative = self.sample_negative(r["user_id"], target)
                    pos.append(f.processor.item_input(target, self.sample_users(target, user_row)))
                    neg.append(f.processor.item_input(negative, self.sample_users(negative, user_row)))
                    pos_labels.append(f.labels(target))
                    neg_labels.append(f.labels(negative))
                    if self.with_sibling:
                        sibling = self.sample_sibling(target)
                        sib.append(f.processor.item_input(sibling, self.sample_users(sibling, user_row)))
            batch.update(self.features.processor.stack("rec_", rec, rec_labels))
            if self.with_pos_neg:
                batch.update(self.features.processor.stack("pos_", pos, pos_labels if self.label_item_inputs else None))
                batch.update(self.features.processor.stack("neg_", neg, neg_labels if self.label_item_inputs else None))
            if sib:
                batch.update(self.features.processor.stack("sib_", sib, None))
        if index_rows:
            examples, labels = [], []
            for r in index_rows:
                row = f.item_row(r["item_id"])
                examples.append(f.processor.item_input(row, self.sample_users(row)))
                labels.append(f.labels(row))
            batch.update(self.features.processor.stack("index_", examples, labels))
        return batch


__all__ = [
    "COLAREC_TOKENS",
    "ColaRecCollator",
    "ColaRecProcessor",
    "ColaRecFeatureConfig",
    "ColaRecFeatures",
    "ColaRecSpecialTokens",
    "tokenize_item_texts",
]
