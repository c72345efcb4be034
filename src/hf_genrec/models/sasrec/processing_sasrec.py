"""SASRec's input path: the item-sequence processor (histories -> item rows) under SASRec's name."""

from __future__ import annotations

from ..item_sequences import ItemSequenceProcessor


class SASRecProcessor(ItemSequenceProcessor):
    """History -> SASRec inputs: the rows + 1 of the last ``max_history`` items, left-padded with 0."""


__all__ = ["SASRecProcessor"]
