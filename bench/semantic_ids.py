"""Semantic-ID build cost on Beauty: RQ-VAE (Trainer, default recipe) vs RQ-KMeans.

Prints one JSON line: embedding seconds (cold or warm cache, reported separately), then for each
method the seconds to build the table from warm-cache embeddings, the peak resident memory of the
process that did it (each method runs in its own child process, so peaks do not mix), peak CUDA
memory when on a GPU, and the table's quality figures.

    python bench/semantic_ids.py                                  # cpu, ../shared/data
    python bench/semantic_ids.py --device cuda --data-dir DIR
    python bench/semantic_ids.py --cold-embedding                 # also time the encoder from scratch
"""

from __future__ import annotations

import os

# On a shared CPU, OpenMP threads that spin while waiting make contended runs 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "training_args" / "rqvae-beauty.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")
    p.add_argument("--config", default=str(DEFAULT_RECIPE), help="recipe YAML")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--methods", default="rqvae,rqkmeans", help="comma-separated methods to time")
    p.add_argument("--epochs", type=float, default=None, help="override num_train_epochs of the recipe")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: $HF_GENREC_CACHE)")
    p.add_argument("--cold-embedding", action="store_true", help="time the encoder with an empty cache")
    return p.parse_args(argv)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def _embed(args: argparse.Namespace, cache_dir: str | None) -> dict:
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_encoders import default_cache_dir, default_encoder_path, embedding_cache_key, encode_item_texts, encoder_fingerprint
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    recipe, _ = load_item_tokenizer_recipe(args.config)
    catalogue = load_rec_dataset(args.dataset, args.data_dir).catalogue
    item_ids, texts = list(catalogue.item_ids), list(catalogue.texts())
    key = embedding_cache_key(encoder_fingerprint(recipe.encoder or default_encoder_path()), texts)
    warm = (Path(cache_dir) if cache_dir else default_cache_dir()).joinpath(f"{key}.safetensors").is_file()
    start = time.perf_counter()
    embeddings = encode_item_texts(
        texts, recipe.encoder, batch_size=recipe.embedding_batch_size, cache_dir=cache_dir, device=args.device,
        show_progress_bar=False,
    )
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "cache": "warm" if warm else "cold",
        "items": len(item_ids),
        "dim": int(embeddings.shape[1]),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _build(args: argparse.Namespace, method: str, cache_dir: str | None) -> dict:
    """Runs in a child process: build one method's table from (warm) cached embeddings."""
    import torch

    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_encoders import encode_item_texts
    from hf_genrec.item_tokenizers.build import build_semantic_ids
    from hf_genrec.recipes.item_tokenizer_recipe import load_item_tokenizer_recipe

    recipe, _ = load_item_tokenizer_recipe(args.config)
    dataset = load_rec_dataset(args.dataset, args.data_dir)
    item_ids, texts, sequences = list(dataset.catalogue.item_ids), list(dataset.catalogue.texts()), dataset.train_sequences()
    embeddings = encode_item_texts(texts, recipe.encoder, cache_dir=cache_dir, device=args.device, show_progress_bar=False)
    overrides = {} if args.epochs is None else {"num_train_epochs": args.epochs}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = build_semantic_ids(
            args.dataset, method=method, recipe_path=args.config, output_dir=out, item_ids=item_ids,
            embeddings=embeddings, sequences=sequences, device=args.device, show_progress_bar=False, **overrides,
        ).summary
        seconds = time.perf_counter() - start
    result = {
        "seconds": round(seconds, 2),
        "peak_rss_mb": _peak_rss_mb(),
        **{k: summary[k] for k in ("unique_ids", "unique_content_prefixes", "collision_rate", "max_items_per_prefix",
                                     "usage_per_level", "entropy_per_level") if k in summary},
    }
    if "train_steps" in summary:
        result["train_steps"] = summary["train_steps"]
    if args.device == "cuda" and torch.cuda.is_available():
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _child(queue, fn, *fn_args) -> None:
    try:
        queue.put(("ok", fn(*fn_args)))
    except BaseException as exc:  # report, do not hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def _in_child(fn, *fn_args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, *fn_args))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


def main(argv=None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as cold_cache:
        cache_dir = cold_cache if args.cold_embedding else args.cache_dir
        embedding = _in_child(_embed, args, cache_dir)
        result = {
            "bench": "semantic_ids",
            "dataset": args.dataset,
            "device": args.device,
            "torch_threads": __import__("torch").get_num_threads(),
            "embedding": embedding,
        }
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            result[method] = _in_child(_build, args, method, cache_dir)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
