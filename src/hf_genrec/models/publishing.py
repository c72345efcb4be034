"""``model.push_to_hub(repo_id)`` publishes what ``hf-genrec push`` publishes, with the same card.

The card (model-index from ``eval_results.json``, the recipe, a snippet with the checkpoint's own
item ids) and the staging that keeps pickles and local paths off the Hub live in ``hf_genrec.hub``,
a layer above the models.  ``import hf_genrec`` registers that publisher here; a model loaded as
remote code, without the package, has none and pushes the way transformers does.
"""

from __future__ import annotations

from typing import Any, Callable

_PUBLISHER: Callable[..., str] | None = None


def set_model_publisher(publisher: Callable[..., str] | None) -> None:
    """``publisher(model, repo_id, **push_to_hub_kwargs) -> repo url`` becomes what ``model.push_to_hub`` runs."""
    global _PUBLISHER
    _PUBLISHER = publisher


class PublishWithCardMixin:
    """``push_to_hub`` through the registered publisher (put before ``PreTrainedModel`` in the bases)."""

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> str:
        if _PUBLISHER is None:
            return super().push_to_hub(repo_id, *args, **kwargs)
        return _PUBLISHER(self, repo_id, *args, **kwargs)


__all__ = ["PublishWithCardMixin", "set_model_publisher"]
