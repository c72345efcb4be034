"""ColaRec encoder inputs and training batches, built from ids with ``datasets`` and a collator.

An item's content is ``[ITEM_SLOT, text tokens]``; the model replaces the slot's word embedding by
the item's learned atom embedding (``item_slot_ids`` says which item).

* Recommendation input ``X_u = [TASK, c_i1, c_i2, ...]``: the user's *other* training items, most
  recent last, never the target (``ColaRecCollator`` drops the target even if a row lists it).
* Indexing input ``X_i = [TASK, c_i, USER_SLOT × n]``: the item's content and up to
  ``users_per_item`` users who interacted with it in training (never the row's own user).
* Training batch for a row (user u, target i): ``rec_*`` (X_u, labels = GID(i)), ``pos_*`` (X_i,
  labels GID(i)), ``neg_*`` (X_j, labels GID(j)) with j an item u never saw in training and,
  whenever one exists, with a different first GID code, and ``sib_*`` (an item sharing i's first
  two GID codes, else its first code, else i itself) for the contrastive term.
* Index-only rows (``{"item_id": ...}``, from ``index_dataset``) give ``index_*`` tensors.

Negatives, sibling items and user slots are drawn in the collator, so they change every epoch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from datasets import Dataset

from ..errors import InvalidInputError, UnknownItemError
from ..semantic_ids import SemanticIdTable

# item-position ids (ColaRec's "info position"): 0 = task / end / padding, 1 = item slot,
# 2 = user slots, 3... = text tokens inside the item
POS_NONE, POS_ITEM_SLOT, POS_USER_SLOT, POS_TEXT = 0, 1, 2, 3
DEFAULT_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<task>", "<item>", "<user>")


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
def train_item_text_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS
):
    """A Unigram ``tokenizers.Tokenizer`` trained on the item corpus (offline, about a second)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(special_tokens), unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


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


# ---------------------------------------------------------------------------------------- features
class ColaRecFeatures:
    """Maps item / user ids to model rows and builds encoder-input lists.

    Item rows follow the semantic-ID table (row ``r`` of the model's atom-item table is
    ``table.item_ids[r]``); user rows are the sorted training users.  Only training interactions
    are known here: they define who saw what (negatives) and who indexes an item.
    """

    def __init__(
        self,
        table: SemanticIdTable,
        item_token_ids: Sequence[Sequence[int]],
        train_interactions: Sequence[tuple[int, int]],
        special: ColaRecSpecialTokens,
        config: ColaRecFeatureConfig | None = None,
    ):
        self.table = table
        self.config = config or ColaRecFeatureConfig()
        self.special = special
        if len(item_token_ids) != table.num_items:
            raise InvalidInputError(f"{len(item_token_ids)} tokenised items for a table of {table.num_items} items")
        cap = self.config.max_tokens_per_item
        self.item_tokens = [list(map(int, toks))[:cap] for toks in item_token_ids]
        self.codes = np.asarray(table.codes, dtype=np.int64)
        self.user_ids = sorted({int(u) for u, _ in train_interactions})
        self._user_row = {u: r for r, u in enumerate(self.user_ids)}
        self.user_items: dict[int, set[int]] = defaultdict(set)  # user id -> item rows seen in training
        self.item_users: list[list[int]] = [[] for _ in range(table.num_items)]  # item row -> user rows
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

    # ------------------------------------------------------------------ lookups
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

    # ------------------------------------------------------------------ sequences
    def _item_content(self, row: int) -> tuple[list[int], list[int], list[int]]:
        text = self.item_tokens[row]
        ids = [self.special.item_slot_token_id] + text
        slots = [row] + [-1] * len(text)
        positions = [POS_ITEM_SLOT] + [POS_TEXT + p for p in range(len(text))]
        return ids, slots, positions

    def user_input(self, history_rows: Sequence[int]) -> dict[str, list[int]]:
        """X_u for item rows ``history_rows`` (oldest first); the oldest items go first when too long."""
        cfg = self.config
        budget = cfg.max_length - 1 - (self.special.eos_token_id is not None)
        contents = []
        used = 0
        for row in list(history_rows)[-cfg.max_items_per_user :][::-1]:  # newest first
            content = self._item_content(row)
            if used + len(content[0]) > budget:
                break
            contents.append(content)
            used += len(content[0])
        ids, slots, positions = [self.special.task_token_id], [-1], [POS_NONE]
        for c_ids, c_slots, c_pos in reversed(contents):
            ids += c_ids
            slots += c_slots
            positions += c_pos
        return self._finish(ids, slots, positions, None)

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

    # ------------------------------------------------------------------ datasets
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
def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


class ColaRecCollator:
    """Pads ColaRec examples into the prefixed tensors ``ColaRecForGenerativeRecommendation`` reads.

    Rows with ``target`` are recommendation rows (``rec_``/``pos_``/``neg_``/``sib_`` groups; the
    ``with_*`` flags drop groups a run does not need); rows with only ``item_id`` are indexing
    rows (``index_`` group); rows with ``targets`` (evaluation) go through ``collate_eval``.
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
    def _stack(self, prefix: str, examples: list[dict[str, list[int]]], labels: list[list[int]] | None) -> dict:
        pad = self.features.special.pad_token_id
        out = {
            f"{prefix}input_ids": _pad([e["input_ids"] for e in examples], pad),
            f"{prefix}attention_mask": _pad([[1] * len(e["input_ids"]) for e in examples], 0),
            f"{prefix}item_slot_ids": _pad([e["item_slot_ids"] for e in examples], -1),
            f"{prefix}item_position_ids": _pad([e["item_position_ids"] for e in examples], POS_NONE),
        }
        if any("user_slot_ids" in e for e in examples):
            out[f"{prefix}user_slot_ids"] = _pad([e.get("user_slot_ids", [-1] * len(e["input_ids"])) for e in examples], -1)
        if labels is not None:
            out[f"{prefix}labels"] = torch.as_tensor(labels, dtype=torch.long)
        return out

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
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
                rec.append(f.user_input(history))
                rec_labels.append(f.labels(target))
                if self.with_pos_neg:
                    user_row = f._user_row.get(int(r["user_id"]))
                    negative = self.sample_negative(r["user_id"], target)
                    pos.append(f.item_input(target, self.sample_users(target, user_row)))
                    neg.append(f.item_input(negative, self.sample_users(negative, user_row)))
                    pos_labels.append(f.labels(target))
                    neg_labels.append(f.labels(negative))
                    if self.with_sibling:
                        sibling = self.sample_sibling(target)
                        sib.append(f.item_input(sibling, self.sample_users(sibling, user_row)))
            batch.update(self._stack("rec_", rec, rec_labels))
            if self.with_pos_neg:
                batch.update(self._stack("pos_", pos, pos_labels if self.label_item_inputs else None))
                batch.update(self._stack("neg_", neg, neg_labels if self.label_item_inputs else None))
            if sib:
                batch.update(self._stack("sib_", sib, None))
        if index_rows:
            examples, labels = [], []
            for r in index_rows:
                row = f.item_row(r["item_id"])
                examples.append(f.item_input(row, self.sample_users(row)))
                labels.append(f.labels(row))
            batch.update(self._stack("index_", examples, labels))
        return batch

    def collate_eval(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Unprefixed encoder inputs for ``encode_for_decoding`` plus the rows' ids, targets and exclusions."""
        f = self.features
        examples = [f.user_input([f.item_row(i) for i in r["history"]]) for r in rows]
        batch: dict[str, Any] = self._stack("", examples, None)
        batch["user_id"] = [int(r["user_id"]) for r in rows]
        batch["targets"] = [list(r.get("targets", [])) for r in rows]
        batch["exclude"] = [list(r.get("exclude", [])) for r in rows]
        return batch


__all__ = [
    "ColaRecCollator",
    "ColaRecFeatureConfig",
    "ColaRecFeatures",
    "ColaRecSpecialTokens",
    "DEFAULT_SPECIAL_TOKENS",
    "tokenize_item_texts",
    "train_item_text_tokenizer",
]
