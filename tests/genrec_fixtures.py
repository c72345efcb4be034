"""Small real-data slices for end-to-end tests: the first users of Beauty and a random ID table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_genrec.semantic_ids.id_table import SemanticIdTable


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


def write_phones_slice(data_dir: Path, out_root: Path, users: int = 200, name: str = "phones-slice") -> Path:
    """The first ``users`` users of amazon-phones (ColaRec split) and the items they touch."""
    import csv

    folder = out_root / name
    folder.mkdir(parents=True, exist_ok=True)
    src = data_dir / "amazon-phones"
    keep: set[int] = set()
    with open(src / "train.csv") as handle:
        for row in csv.DictReader(handle):
            if len(keep) < users or int(row["user_id"]) in keep:
                keep.add(int(row["user_id"]))
    items: set[int] = set()
    for name_ in ("train.csv", "valid.csv", "test.csv"):
        with open(src / name_) as handle, open(folder / name_, "w") as out:
            reader = csv.reader(handle)
            header = next(reader)
            out.write(",".join(header) + "\n")
            for row in reader:
                if int(row[0]) in keep:
                    out.write(",".join(row) + "\n")
                    items.add(int(row[1]))
    with open(src / "items.jsonl") as handle, open(folder / "items.jsonl", "w") as out:
        for line in handle:
            if json.loads(line)["item_id"] in items:
                out.write(line)
    return out_root


TINY_COLAREC = {
    "model_family": "colarec",
    "semantic_id_method": "colarec-kmeans",
    "lightgcn_epochs": 2,
    "gid_clusters": 12,
    "text_vocab_size": 500,
    "max_items_per_user": 5,
    "max_tokens_per_item": 8,
    "max_input_length": 64,
    "d_model": 32,
    "d_ff": 64,
    "d_kv": 8,
    "num_heads": 2,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "use_cpu": True,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 64,
    "learning_rate": 0.003,
    "logging_steps": 2,
    "report_to": "none",
    "disable_tqdm": True,
    "generation_num_beams": 20,
    "metric_ks": [5, 10, 20],
}
