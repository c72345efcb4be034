"""The CLI prints one JSON object on the last stdout line, and errors cleanly on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_genrec.cli.main", *args], capture_output=True, text=True, timeout=300)


def test_data_stats(data_dir):
    proc = run_cli("data", "stats", "--dataset", "amazon-beauty", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    assert stats["mean_history"] == pytest.approx(8.876, abs=1e-3)


def test_popularity_baseline(data_dir):
    proc = run_cli("baseline", "popularity", "--dataset", "amazon-beauty", "--split", "test", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) >= {"recall@5", "recall@10", "ndcg@5", "ndcg@10", "protocol"}
    assert "leave-one-out" in result["protocol"] and result["users"] == 22363
    assert result["recall@10"] == pytest.approx(0.0114, abs=5e-4)


def test_unknown_dataset_is_a_clean_error(tmp_path):
    proc = run_cli("data", "stats", "--dataset", "nope", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown dataset 'nope'" in proc.stderr and "Traceback" not in proc.stderr
