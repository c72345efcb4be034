"""Pictures of a semantic-ID assignment: codebook usage per level and collision sizes."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInputError
from ..io_utils import atomic_path
from ..semantic_ids.id_table import SemanticIdTable


def check_plot_path(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse, before any work, a plot path whose format matplotlib cannot write or that names an existing file."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    suffix = path.suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise InvalidInputError(f"plot {path}: format {suffix!r} is not one matplotlib writes ({', '.join(sorted(formats))})")
    if path.is_dir():
        raise InvalidInputError(f"plot {path} is a folder: name a file such as ids.png")
    if path.exists() and not overwrite:
        raise InvalidInputError(f"plot {path} already exists: name a new file, or pass --overwrite-output-dir to replace it")
    return path


def plot_semantic_id_stats(table: SemanticIdTable, path: str | os.PathLike) -> Path:
    """Two panels: codebook usage per level, and how many ID prefixes hold k items (collisions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    stats = table.stats()
    histogram = table.collision_histogram()
    fig, (ax_usage, ax_hist) = plt.subplots(1, 2, figsize=(10, 4))
    levels = list(range(len(stats["usage_per_level"])))
    ax_usage.bar(levels, [100 * u for u in stats["usage_per_level"]], color="tab:blue")
    ax_usage.set_xticks(levels)
    ax_usage.set_xlabel("level")
    ax_usage.set_ylabel("codes used (%)")
    ax_usage.set_ylim(0, 100)
    ax_usage.set_title("Codebook usage per level")
    ax_hist.bar(list(histogram.keys()), list(histogram.values()), color="tab:orange")
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("items sharing one content prefix")
    ax_hist.set_ylabel("prefixes")
    ax_hist.set_title(f"ID collisions ({table.method}, {table.num_items} items)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


__all__ = ["plot_semantic_id_stats"]
