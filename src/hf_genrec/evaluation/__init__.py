"""Ranking metrics, the popularity baseline, and the `evaluate` metric module."""

from pathlib import Path

from .metrics import pad_lists, ranking_metrics


def metric_module_path() -> str:
    """Folder to pass to ``evaluate.load`` (works offline)."""
    return str(Path(__file__).parent / "metric_module" / "genrec_metrics.py")


__all__ = ["metric_module_path", "pad_lists", "ranking_metrics"]
