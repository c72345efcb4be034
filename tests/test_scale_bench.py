"""bench/scale.py stays runnable: one small size end to end in-process, and its crossing estimate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCALE = Path(__file__).resolve().parents[1] / "bench" / "scale.py"


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("scale_bench", SCALE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_small_catalogue_end_to_end(scale, one_torch_thread):
    args = scale.parse_args([
        "--dim", "8", "--clusters", "20", "--codebook-size", "16", "--users", "16", "--batch-size", "8", "--beams", "4", "--top-k", "2",
        "--train-batch", "8", "--train-steps", "1", "--shape", "tiny", "--sasrec-dim", "8", "--skip-text",
    ])
    result = scale.run_one_size(3000, args)
    assert result["items"] == 3000
    assert result["codebook_sizes"][:3] == [16, 16, 16] and result["codebook_sizes"][3] == result["max_items_per_prefix"]
    for key in ("id_build_s", "train_step_s", "decode_ms_per_user", "sasrec_ms_per_user", "id_table_mb", "trie_mb"):
        assert result[key] > 0, key
    assert result["peak_rss_mb"] >= result["id_build_peak_rss_mb"] >= result["rss_before_id_build_mb"]


def test_crossing_is_interpolated_where_the_order_flips(scale):
    found = scale.crossing([10, 100, 1000], [5.0, 5.0, 5.0], [1.0, 3.0, 13.0])
    assert found == {"crossing_items": 280, "crossing": "interpolated between measured sizes"}
    assert scale.crossing([10, 100], [5.0, 5.0], [1.0, 3.0])["crossing"].startswith("extrapolated")
