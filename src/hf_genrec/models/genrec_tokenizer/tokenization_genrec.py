"""GenRecTokenizer: a T5 tokenizer whose vocabulary holds semantic-ID code tokens, user and task tokens.

Layout of the vocabulary (token ids are fixed at construction and survive save/load):

    0 <pad>  1 </s>  2 <unk>
    one block per level:  <a_0> .. <a_{K0-1}>, <b_0> .. <b_{K1-1}>, ...
    hashed user tokens:   <u_0> .. <u_{B-1}>
    task tokens:          <task_rec>, <task_index>, ...
    optional text pieces  (a Unigram vocabulary trained offline on an item corpus)

Code, user and task tokens are registered as added tokens, so text such as ``"<a_12><b_7>"`` is
split into exactly those tokens.  The tokenizer carries the ``SemanticIdTable`` and saves it as
``semantic_ids.json`` beside ``tokenizer.json``.

The class deliberately defines no ``__init__``: with transformers 5 a tokenizer subclass that does
is rebuilt from the bare vocabulary on reload and loses its pre-tokenizer (see the project notes).
Extra settings travel as init kwargs (``num_user_buckets``, ``task_tokens``) in tokenizer_config.json.

*Generation layout.*  TIGER's decoder writes this vocabulary's code tokens; ColaRec's decoder has a
vocabulary of its own (0 = start, 1 = end, then each level's codes).  ``generation_level_offsets`` /
``generation_eos_token_id`` (init kwargs, set by the family that builds the tokenizer) say where a
model's ``generate()`` output puts each level's codes; without them the generated ids are this
vocabulary's.  ``decode_items`` and the ``generate()`` constraints
(:mod:`hf_genrec.semantic_ids.constraints`) read ``generate()`` output in that layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
from tokenizers import AddedToken
from transformers import BatchEncoding, T5Tokenizer

from ...errors import CheckpointMismatchError, ConfigError, InvalidInputError, UnknownItemError
from ...remote_code import is_package_class, save_remote_code
from ...semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable

LEVEL_LETTERS = string.ascii_lowercase
DEFAULT_TASK_TOKENS = ("<task_rec>", "<task_index>")
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def code_token(level: int, code: int) -> str:
    """The text form of one code token, e.g. ``code_token(1, 7) == "<b_7>"``."""
    if not 0 <= level < len(LEVEL_LETTERS):
        raise InvalidInputError(f"level {level} out of range: at most {len(LEVEL_LETTERS)} levels are supported")
    return f"<{LEVEL_LETTERS[level]}_{int(code)}>"


def user_bucket(user_id: int, num_buckets: int) -> int:
    """Deterministic hash bucket of a user id (Python's ``hash`` is salted per process, so not that)."""
    digest = hashlib.blake2b(str(int(user_id)).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_buckets


def _train_text_vocab(corpus: Iterable[str], vocab_size: int) -> list[tuple[str, float]]:
    """Train a Unigram vocabulary offline (well under a second for a catalogue) with T5's pre-tokenizer."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer

    tok = Tokenizer(Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )
    trainer = UnigramTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    pieces = json.loads(tok.to_str())["model"]["vocab"]
    return [(str(p), float(s)) for p, s in pieces if p not in SPECIAL_TOKENS]


class GenRecTokenizer(T5Tokenizer):
    """T5 tokenizer for generative recommendation: items become their semantic-ID code tokens."""

    vocab_files_names = {"tokenizer_file": "tokenizer.json", "semantic_ids_file": SEMANTIC_ID_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    @property
    def _auto_map(self) -> dict | None:
        """Written into tokenizer_config.json by ``save_pretrained`` (beside the code ``_save_pretrained`` saves).

        Classes loaded as remote code get theirs from transformers' own ``register_for_auto_class``.
        """
        if not is_package_class(type(self)):
            return None
        return {"AutoTokenizer": [f"{type(self).__module__.rpartition('.')[2]}.{type(self).__name__}", None]}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_semantic_id_table(
        cls,
        table: SemanticIdTable,
        num_user_buckets: int = 2000,
        text_corpus: Iterable[str] | None = None,
        text_vocab_size: int = 8000,
        task_tokens: Sequence[str] = DEFAULT_TASK_TOKENS,
        **kwargs,
    ) -> "GenRecTokenizer":
        """Build the vocabulary for ``table``; ``text_corpus`` (item texts) adds a trained Unigram text vocabulary."""
        if num_user_buckets < 0:
            raise ConfigError(f"num_user_buckets must be >= 0, got {num_user_buckets}")
        if table.num_levels > len(LEVEL_LETTERS):
            raise ConfigError(f"at most {len(LEVEL_LETTERS)} levels are supported, the table has {table.num_levels}")
        structured = [code_token(level, c) for level, size in enumerate(table.codebook_sizes) for c in range(size)]
        structured += [f"<u_{i}>" for i in range(num_user_buckets)]
        structured += list(task_tokens)
        text_vocab = _train_text_vocab(text_corpus, text_vocab_size) if text_corpus is not None else [("▁", -2.0)]
        seen = set(SPECIAL_TOKENS) | set(structured)
        vocab = [(t, 0.0) for t in SPECIAL_TOKENS] + [(t, 0.0) for t in structured]
        vocab += [(p, s) for p, s in text_vocab if p not in seen]
        tok = cls(
            vocab=vocab,
            extra_ids=0,
            num_user_buckets=int(num_user_buckets),
            task_tokens=list(task_tokens),
            **kwargs,
        )
        # Registering them as added tokens makes "<a_12><b_7>" split into exactly those tokens.
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in structured])
        tok._semantic_id_table = table
        tok._check_layout()
        return tok

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> "GenRecTokenizer":
        """Load tokenizer files and ``semantic_ids.json`` (JSON only, nothing executed: never remote code)."""
        kwargs.pop("trust_remote_code", None)
        tok = super().from_pretrained(pretrained_model_name_or_path, *args, trust_remote_code=False, **kwargs)
        path = tok.init_kwargs.get("semantic_ids_file")
        if path is None or not os.path.isfile(path):
            raise CheckpointMismatchError(f"{pretrained_model_name_or_path}: tokenizer files lack {SEMANTIC_ID_FILE}")
        tok._semantic_id_table = SemanticIdTable.load(path)
        tok._check_layout()
        return tok

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        file_names = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        path = self.semantic_id_table.save(save_directory)  # atomic JSON write
        code = save_remote_code(save_directory, [type(self).__module__]) if is_package_class(type(self)) else []
        return tuple(file_names) + (str(path),) + tuple(str(p) for p in code)

    def _check_layout(self) -> None:
        """Every level's code tokens, and the user tokens, must be one contiguous block of ids each, in
        order; the task tokens must be in the vocabulary (a tokenizer_config.json edited by hand is caught here)."""
        vocab = self.get_vocab()
        for level, size in enumerate(self.semantic_id_table.codebook_sizes):
            ids = [vocab.get(code_token(level, c)) for c in range(size)]
            if None in ids or ids != list(range(ids[0], ids[0] + size)):
                raise CheckpointMismatchError(
                    f"tokenizer vocabulary does not hold level {level}'s {size} code tokens as one block"
                )
        buckets = self.init_kwargs.get("num_user_buckets", 0)
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 0:
            raise CheckpointMismatchError(f"tokenizer config: num_user_buckets must be a non-negative integer, got {buckets!r}")
        ids = [vocab.get(f"<u_{b}>") for b in range(buckets)]
        if ids and (None in ids or ids != list(range(ids[0], ids[0] + buckets))):
            raise CheckpointMismatchError(f"tokenizer vocabulary does not hold the {buckets} user tokens as one block")
        tasks = self.init_kwargs.get("task_tokens", [])
        if not isinstance(tasks, list) or not all(isinstance(t, str) and t in vocab for t in tasks):
            raise CheckpointMismatchError(f"tokenizer config: task_tokens must list tokens of the vocabulary, got {tasks!r}")

    # ------------------------------------------------------------------ layout
    @property
    def semantic_id_table(self) -> SemanticIdTable:
        table = getattr(self, "_semantic_id_table", None)
        if table is None:
            raise ConfigError("this GenRecTokenizer has no semantic-ID table (build it with from_semantic_id_table)")
        return table

    @property
    def num_levels(self) -> int:
        return self.semantic_id_table.num_levels

    @property
    def codebook_sizes(self) -> list[int]:
        return list(self.semantic_id_table.codebook_sizes)

    @cached_property
    def level_offsets(self) -> list[int]:
        """Token id of code 0 of each level: token id = ``level_offsets[level] + code``."""
        return [self.convert_tokens_to_ids(code_token(level, 0)) for level in range(self.num_levels)]

    @cached_property
    def _offsets_array(self) -> np.ndarray:
        return np.asarray(self.level_offsets, dtype=np.int64)

    @property
    def generation_level_offsets(self) -> list[int]:
        """Id of code 0 of each level in the output of the model's ``generate()`` (see the module docstring)."""
        offsets = self.init_kwargs.get("generation_level_offsets")
        return [int(o) for o in offsets] if offsets is not None else list(self.level_offsets)

    @property
    def generation_eos_token_id(self) -> int:
        """The end id of the model's ``generate()`` output."""
        eos = self.init_kwargs.get("generation_eos_token_id")
        return int(eos) if eos is not None else int(self.eos_token_id)

    def set_generation_layout(self, level_offsets: Sequence[int], eos_token_id: int) -> None:
        """Record the layout of the model's ``generate()`` output (saved in tokenizer_config.json)."""
        if len(level_offsets) != self.num_levels:
            raise ConfigError(f"{len(level_offsets)} generation level offsets for {self.num_levels} levels")
        self.init_kwargs["generation_level_offsets"] = [int(o) for o in level_offsets]
        self.init_kwargs["generation_eos_token_id"] = int(eos_token_id)

    @property
    def num_user_buckets(self) -> int:
        return int(self.init_kwargs.get("num_user_buckets", 0))

    @cached_property
    def user_token_offset(self) -> int | None:
        return self.convert_tokens_to_ids("<u_0>") if self.num_user_buckets else None

    @property
    def task_tokens(self) -> list[str]:
        return list(self.init_kwargs.get("task_tokens", []))

    def code_token_id(self, level: int, code: int) -> int:
        if not 0 <= level < self.num_levels:
            raise InvalidInputError(f"level {level} out of range [0, {self.num_levels})")
        if not 0 <= code < self.codebook_sizes[level]:
            raise InvalidInputError(f"code {code} out of range [0, {self.codebook_sizes[level]}) at level {level}")
        return self.level_offsets[level] + int(code)

    def token_to_level_code(self, token_id: int, generated: bool = False) -> tuple[int, int] | None:
        """``(level, code)`` of a code token id (of ``generate()`` output when ``generated``), ``None`` for any other id."""
        offsets = self.generation_level_offsets if generated else self.level_offsets
        for level, (off, size) in enumerate(zip(offsets, self.codebook_sizes)):
            if off <= token_id < off + size:
                return level, int(token_id) - off
        return None

    def user_token_id(self, user_id: int) -> int:
        if not self.num_user_buckets:
            raise ConfigError("this tokenizer has no user tokens (num_user_buckets=0)")
        return self.user_token_offset + user_bucket(user_id, self.num_user_buckets)

    def task_token_id(self, task: str) -> int:
        token = task if task.startswith("<") else f"<task_{task}>"
        if token not in self.task_tokens:
            raise InvalidInputError(f"unknown task token {token!r}; known: {self.task_tokens}")
        return self.convert_tokens_to_ids(token)

    # ------------------------------------------------------------------ items <-> ids
    def encode_item(self, item_id: int) -> list[int]:
        """The item's code tokens (one per level)."""
        return (np.asarray(self.semantic_id_table.codes_of(item_id)) + self._offsets_array).tolist()

    def encode_history(
        self,
        items: Sequence[int],
        user_id: int | None = None,
        max_items: int | None = None,
        task: str | None = None,
    ) -> list[int]:
        """Task token (optional), user token (when ``user_id`` is given), then each item's codes, oldest first."""
        items = list(items)
        if not items:
            raise InvalidInputError("empty history: at least one item is needed to recommend")
        if max_items is not None:
            items = items[-max_items:]
        prefix = [self.task_token_id(task)] if task is not None else []
        if user_id is not None:
            prefix.append(self.user_token_id(user_id))
        codes = self.semantic_id_table.codes_for(items)  # UnknownItemError names the item
        return prefix + (codes + self._offsets_array[None, :]).ravel().tolist()

    def batch_encode_histories(
        self,
        histories: Sequence[Sequence[int]],
        user_ids: Sequence[int | None] | None = None,
        max_items: int | None = None,
        return_tensors: str | None = "pt",
    ) -> BatchEncoding:
        """Encode several histories with dynamic padding (to the longest in the batch)."""
        if user_ids is not None and len(user_ids) != len(histories):
            raise InvalidInputError(f"{len(user_ids)} user ids for {len(histories)} histories")
        users = list(user_ids) if user_ids is not None else [None] * len(histories)
        features = []
        for i, (items, user) in enumerate(zip(histories, users)):
            try:
                ids = self.encode_history(items, user, max_items=max_items)
            except InvalidInputError as exc:
                raise InvalidInputError(f"history {i}: {exc}") from None
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
        return self.pad(features, padding=True, return_tensors=return_tensors)

    def decode_items(self, token_ids) -> list[int | None]:
        """Item ids of generated code sequences; ``None`` where the ID is not in the catalogue.

        A 2-D input (e.g. ``generate()`` output) gives one item per row; a 1-D input is read as
        consecutive items.  Ids are read in the model's generation layout (``generation_level_offsets``:
        ColaRec's decoder vocabulary differs from this tokenizer's); ids that are not codes (pad,
        end, decoder start) are skipped.
        """
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        token_ids = list(token_ids)
        if token_ids and isinstance(token_ids[0], (list, tuple)):
            out = []
            for row in token_ids:
                items = self.decode_items(row)
                out.append(items[0] if len(items) == 1 else None)
            return out
        levels = self.num_levels
        codes = [lc for lc in (self.token_to_level_code(int(t), generated=True) for t in token_ids) if lc is not None]
        result: list[int | None] = []
        for start in range(0, len(codes), levels):
            chunk = codes[start : start + levels]
            if len(chunk) < levels or any(level != i for i, (level, _) in enumerate(chunk)):
                result.append(None)
                continue
            result.append(self.semantic_id_table.item_of([c for _, c in chunk]))
        return result

    def decode_item(self, token_ids: Sequence[int]) -> int:
        """The one item named by ``token_ids``; UnknownItemError if it names none."""
        items = self.decode_items(token_ids)
        if len(items) != 1 or items[0] is None:
            raise UnknownItemError(f"token ids {list(token_ids)} do not name an item of the catalogue")
        return items[0]


__all__ = ["GenRecTokenizer", "code_token", "user_bucket", "LEVEL_LETTERS"]
