"""Small real-data slices for end-to-end tests: the first users of Beauty and a random ID table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_genrec.semantic_ids import SemanticIdTable


def write_beauty_slice(data_dir: Path, out_root: Path, users: int = 200, name: str = "beauty-slice") -> Path:
    """Copy the first ``users`` Beauty users and the items they touch into ``out_root/name``."""
    folder = out_root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = (data_dir / "amazon-beauty" / "sequences.txt").read_text().splitlines()[:users]
    (folder / "sequences.txt").write_text("\n".join(lines) + "\n")
    wanted = {int(tok) for line in lines for tok in line.split()[1:]}
    with open(data_dir / "amazon-beauty" / "items.jsonl") as src, open(folder / "items.jsonl", "w") as dst:
        for line in src:
            if json.loads(line)["item_id"] in wanted:
                dst.write(line)
    return out_root


def random_table(item_ids: list[int], levels: int = 3, codebook_size: int = 16, seed: int = 0) -> SemanticIdTable:
    codes = np.random.default_rng(seed).integers(0, codebook_size, (len(item_ids), levels))
    return SemanticIdTable.from_content_codes(sorted(item_ids), codes, codebook_size, method="random")


TINY_TIGER = {
    "model_family": "tiger",
    "d_model": 32,
    "d_ff": 64,
    "d_kv": 8,
    "num_heads": 2,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "num_user_buckets": 50,
    "use_cpu": True,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "learning_rate": 0.01,
    "logging_steps": 5,
    "report_to": "none",
    "disable_tqdm": True,
    "generation_num_beams": 10,
}
