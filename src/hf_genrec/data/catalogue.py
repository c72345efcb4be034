"""The item catalogue: ids, raw fields and the text each item is embedded / read as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import UnknownItemError
from .keys import KeyMap


@dataclass(frozen=True)
class ItemTextTemplate:
    """How item fields become one text: each present field formatted, then joined.

    ``formats`` maps a field name to a format string with one ``{}``; fields that are missing,
    empty or null are left out rather than rendered as "None".
    """

    formats: tuple[tuple[str, str], ...] = (("title", "{}"), ("brand", "Brand: {}"), ("categories", "Categories: {}"))
    separator: str = ". "

    @classmethod
    def from_fields(cls, fields: Sequence[str], separator: str = ". ") -> "ItemTextTemplate":
        labels = {"title": "{}", "content": "{}"}
        return cls(tuple((f, labels.get(f, f.capitalize() + ": {}")) for f in fields), separator)

    def render(self, item: dict[str, Any]) -> str:
        parts = []
        for name, fmt in self.formats:
            value = _field_text(item.get(name))
            if value:
                parts.append(fmt.format(value))
        return self.separator.join(parts)


def _field_text(value: Any) -> str:
    """Flatten nested category lists into unique, ordered, comma-separated labels."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        seen: dict[str, None] = {}
        stack = list(value)
        flat: list[str] = []
        while stack:
            head = stack.pop(0)
            if isinstance(head, (list, tuple)):
                stack[:0] = list(head)
            elif head is not None and str(head).strip():
                flat.append(str(head).strip())
        for label in flat:
            seen.setdefault(label, None)
        return ", ".join(seen)
    return str(value).strip()


@dataclass
class ItemCatalogue:
    """Items in id order with their raw fields; texts are rendered once with the template.

    Items imported from a user's tables carry their original key in the field ``item_key``
    (``key_map``); the benchmark folders' items have none.
    """

    items: list[dict[str, Any]]
    template: ItemTextTemplate = field(default_factory=ItemTextTemplate)

    def __post_init__(self) -> None:
        self.items = sorted(self.items, key=lambda item: item["item_id"])
        self._by_id = {item["item_id"]: item for item in self.items}
        self._texts = {item["item_id"]: self.template.render(item) for item in self.items}

    @property
    def item_ids(self) -> list[int]:
        return [item["item_id"] for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def item(self, item_id: int) -> dict[str, Any]:
        try:
            return self._by_id[item_id]
        except KeyError:
            raise UnknownItemError(f"item {item_id!r} is not in the catalogue of {len(self)} items") from None

    def text(self, item_id: int) -> str:
        self.item(item_id)
        return self._texts[item_id]

    def texts(self) -> list[str]:
        """Texts aligned with ``item_ids``."""
        return [self._texts[item["item_id"]] for item in self.items]

    def title(self, item_id: int) -> str:
        item = self.item(item_id)
        return str(item.get("title") or item.get("content") or item.get("item_key") or f"item {item_id}")

    @property
    def key_map(self) -> KeyMap | None:
        """Original item keys <-> item ids when every item has an ``item_key``, else ``None``."""
        if "_key_map" not in self.__dict__:
            keyed = all("item_key" in item for item in self.items) and bool(self.items)
            self._key_map = KeyMap(self.item_ids, [item["item_key"] for item in self.items]) if keyed else None
        return self._key_map
