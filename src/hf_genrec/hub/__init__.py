"""Hub integration: model cards rendered from ``hub_cards/`` templates, and pushing saved model directories."""

from .model_cards import (
    card_info,
    card_kinds,
    find_template,
    infer_family,
    load_eval_results,
    parse_eval_results,
    render_model_card,
    save_model_card,
)
from .push import check_model_dir, has_own_model_card, push_model_dir

__all__ = [
    "card_info",
    "card_kinds",
    "check_model_dir",
    "find_template",
    "has_own_model_card",
    "infer_family",
    "load_eval_results",
    "parse_eval_results",
    "push_model_dir",
    "render_model_card",
    "save_model_card",
]
