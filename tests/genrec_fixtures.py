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


def tiny_tiger_recipe(root: Path, data_dir: Path, users: int, **overrides) -> Path:
    """A ``users``-user Beauty slice under ``root/data``, a random ID table in ``root/ids`` and a tiny TIGER
    recipe at ``root/r.yaml`` (output ``root/out`` unless overridden); returns the recipe's path."""
    import yaml

    from hf_genrec.data import load_rec_dataset

    write_beauty_slice(data_dir, root / "data", users=users)
    random_table(load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids).save(root / "ids")
    recipe = {**TINY_TIGER, "dataset": "beauty-slice", "data_dir": str(root / "data"), "semantic_ids": str(root / "ids"),
              "output_dir": str(root / "out"), **overrides}
    (root / "r.yaml").write_text(yaml.safe_dump(recipe))
    return root / "r.yaml"


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content digest of every file under ``folder``: what a command must leave unchanged."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


class CliRun:
    """What ``hf-genrec ...`` run in-process returned: exit code, stdout, stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def result(self) -> dict:
        """The JSON object on the last line of stdout (a successful command)."""
        assert self.code == 0, self.err[-2000:]
        return json.loads(self.out.strip().splitlines()[-1])

    def error_line(self) -> str:
        """The one ``hf-genrec: error:`` line of a failed command: exit status 2, the last line of stderr, no traceback."""
        errors = [line for line in self.err.splitlines() if line.startswith("hf-genrec: error: ")]
        assert self.code == 2 and len(errors) == 1 and self.err.strip().splitlines()[-1] == errors[0], self.err[-2000:]
        assert "Traceback" not in self.err
        return errors[0]


def cli_in_process(*argv: str, stdin: str | None = None) -> CliRun:
    """``hf-genrec argv`` through ``hf_genrec.cli.main.main`` in this process (``stdin``: what a prompt would read)."""
    import contextlib
    import io
    import sys

    from hf_genrec.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin) if stdin is not None else saved_stdin
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(list(argv))
    finally:
        sys.stdin = saved_stdin
    return CliRun(code, out.getvalue(), err.getvalue())


def recipe_with(path: Path, **changes) -> str:
    """The YAML of the recipe at ``path`` with ``changes`` applied (a key given twice is an error, so
    changes are merged, never appended)."""
    import yaml

    from hf_genrec.recipes import load_recipe_yaml

    return yaml.safe_dump({**load_recipe_yaml(Path(path).read_text(encoding="utf-8")), **changes}, sort_keys=False)
