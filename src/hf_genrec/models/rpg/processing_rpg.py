"""RPG's input path: the item-sequence processor plus the catalogue's semantic-ID table (``semantic_ids.json``)."""

from __future__ import annotations

import os
from typing import Any

from ...errors import CheckpointMismatchError, DataFormatError
from ...semantic_ids.id_table import SEMANTIC_ID_FILE, SemanticIdTable
from ..item_sequences import ItemSequenceProcessor
from ..processing_utils import PROCESSOR_FILE, resolve_file


class RPGProcessor(ItemSequenceProcessor):
    """History -> the rows + 1 of the last ``max_history`` items; rows follow ``semantic_id_table``."""

    def __init__(self, semantic_id_table: SemanticIdTable, max_history: int = 50) -> None:
        super().__init__(semantic_id_table.item_ids, max_history=max_history)
        self.semantic_id_table = semantic_id_table

    @property
    def item_codes(self) -> list[list[int]]:
        """The content digits of every item row (the disambiguation level, if any, left out)."""
        table = self.semantic_id_table
        return table.codes[:, : table.content_levels].tolist()

    def check_model(self, config: Any) -> None:
        super().check_model(config)
        table = self.semantic_id_table
        if config.num_digits != table.content_levels or config.codebook_size < max(table.codebook_sizes[: table.content_levels]):
            raise CheckpointMismatchError(
                f"the model's {config.num_digits} digits of {config.codebook_size} codes (config.json) do not fit the "
                f"semantic-ID table's {table.content_levels} content levels of {table.codebook_sizes[: table.content_levels]}"
            )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"max_history": self.max_history}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> list[str]:
        path = self.semantic_id_table.save(save_directory)
        return [str(path)] + super().save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "RPGProcessor":
        config = cls.read_config(pretrained_model_name_or_path, **kwargs)
        table = SemanticIdTable.load(resolve_file(pretrained_model_name_or_path, SEMANTIC_ID_FILE, **kwargs))
        try:
            return cls(table, max_history=int(config["max_history"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"invalid RPG processor config ({exc})", path=PROCESSOR_FILE) from None


__all__ = ["RPGProcessor"]
