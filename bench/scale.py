"""How the package behaves as the catalogue grows: synthetic catalogues of 10k, 100k and 1M items.

For each catalogue size, in a fresh process (so peak memory is that size's own):

* **semantic-ID build**: RQ-KMeans (3 levels x 256 codes + the disambiguation level) through the
  package's one build path, ``build_semantic_ids(embeddings=...)``, on random clustered embeddings
  (a Gaussian mixture, ``--dim`` wide); seconds and peak RSS.  Text encoding is left out: it is
  linear in the catalogue and measured once, separately (items/s of the bundled MiniLM, ``--skip-text``
  to skip), and extrapolated.
* **ID-table memory**: the ``SemanticIdTable`` (traced allocations) and its trie of valid prefixes.
* **training step**: one TIGER step (forward, backward, AdamW) on a batch of ``--train-batch``
  histories drawn from power-law (Zipf) item popularity; median of the timed steps.
* **constrained top-10 decoding**: ``hf_genrec.recommend`` (processor + ``fast_beam_search`` over the
  trie, ``--beams`` beams) on ``--users`` users in batches of ``--batch-size``; ms per user.
* **exact full-catalogue scoring**, side by side: the package's SASRec (2 blocks, ``--sasrec-dim``
  wide) through the same ``hf_genrec.recommend``: hidden states [B, d], ``item_scores`` =
  ``hidden @ item_embeddings.T`` over all N items, a top-10; ms per user (and of its encoder alone).

Both models are randomly initialised: exact scoring does not depend on the weights' values; beam
search does a little (an untrained model's flat scores make the last level's pruning useless: this
is its slowest case).
Prints one JSON object per size, then one JSON line with the lists ``catalogue_sizes``,
``id_build_s``, ``decode_ms_per_user``, ``sasrec_ms_per_user``, ``peak_rss_mb`` (and the rest), and
where generative decoding and exact scoring cross.

    python bench/scale.py                        # 10k, 100k, 1M items
    python bench/scale.py --sizes 10000,100000   # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning workers of
# oversubscribed processes made small matmuls 10-30x slower (tests/conftest.py does the same).
# Must precede the torch import; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated catalogue sizes")
    p.add_argument("--dim", type=int, default=128, help="embedding width (k-means cost is linear in it; MiniLM: 384)")
    p.add_argument("--clusters", type=int, default=2000, help="Gaussian-mixture components of the synthetic embeddings")
    p.add_argument("--codebook-size", type=int, default=256, help="codes a level of the 3 content levels (default 256)")
    p.add_argument("--users", type=int, default=512, help="users decoded per size (default 512)")
    p.add_argument("--batch-size", type=int, default=256, help="users a decoding batch (default 256)")
    p.add_argument("--beams", type=int, default=20)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--history", type=int, default=20, help="items a history (default 20)")
    p.add_argument("--train-batch", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps (after one warm-up step)")
    p.add_argument("--shape", default="cpu-recipe", choices=sorted(SHAPES), help="TIGER size (bench/train.py's shapes)")
    p.add_argument("--sasrec-dim", type=int, default=64)
    p.add_argument("--zipf", type=float, default=1.1, help="exponent of the power-law item popularity")
    p.add_argument("--skip-text", action="store_true", help="do not time the text encoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)  # internal: run one size in this process
    return p.parse_args(argv)


SHAPES = {  # as bench/train.py
    "paper": dict(d_model=128, d_ff=1024, d_kv=64, num_heads=6, num_layers=4, num_decoder_layers=4),
    "cpu-recipe": dict(d_model=128, d_ff=512, d_kv=32, num_heads=6, num_layers=2, num_decoder_layers=2),
    "tiny": dict(d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1, num_decoder_layers=1),  # smoke tests
}


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- synthetic data
def clustered_embeddings(n: int, dim: int, clusters: int, seed: int) -> torch.Tensor:
    """Items around ``clusters`` random centres (unequal spreads), like topics of a catalogue."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=g)
    spread = 0.3 + torch.rand(clusters, generator=g)
    member = torch.randint(clusters, (n,), generator=g)
    x = torch.randn(n, dim, generator=g)
    x.mul_(spread[member][:, None]).add_(centres[member])
    return x


def power_law_histories(n: int, count: int, length: int, exponent: float, seed: int) -> list[list[int]]:
    """``count`` histories of ``length`` items (ids 1..n) drawn with Zipf popularity over a random item order."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    weights /= weights.sum()
    by_rank = rng.permutation(n) + 1
    return by_rank[rng.choice(n, size=(count, length), p=weights)].tolist()


# ---------------------------------------------------------------------------------------- measurements
def build_ids(n: int, embeddings: torch.Tensor, codebook_size: int, seed: int, scratch: str):
    from hf_genrec.item_tokenizers.build import build_semantic_ids

    start = time.perf_counter()
    build = build_semantic_ids(
        method="rqkmeans", output_dir=scratch, item_ids=list(range(1, n + 1)), embeddings=embeddings,
        num_levels=3, codebook_size=codebook_size, seed=seed,
    )
    return build, time.perf_counter() - start


def table_memory_mb(table) -> float:
    """Allocations a SemanticIdTable of this catalogue holds (codes, item ids, lookup arrays), traced."""
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    ids, codes = list(table.item_ids), table.codes.copy()
    tracemalloc.start()
    copy = SemanticIdTable(ids, codes, table.codebook_sizes, table.content_levels, table.method)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copy
    return (current + codes.nbytes + sys.getsizeof(ids) + 28 * len(ids)) / 2**20


def tiger_parts(table, shape: str):
    from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
    from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor

    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=2000)
    torch.manual_seed(0)
    model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **SHAPES[shape]))
    processor = TigerProcessor(tokenizer, max_history=20)
    return model, processor, TigerDataCollator(processor)


def training_step_s(model, collator, histories: list[list[int]], batch: int, steps: int) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for step in range(steps + 1):
        rows = [{"user_id": i, "history": h[:-1], "targets": [h[-1]]} for i, h in enumerate(histories[step * batch : (step + 1) * batch])]
        inputs = collator(rows)
        start = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - start)
    model.eval()
    return statistics.median(times)


def decode_ms_per_user(model, processor, histories: list[list[int]], args) -> tuple[float, float]:
    """ms per user of ``hf_genrec.recommend`` (best of two passes), and the seconds of the first call's trie build."""
    import hf_genrec
    from hf_genrec.generation.ranking import get_id_trie

    start = time.perf_counter()
    get_id_trie(processor)  # built once per processor, cached: timed on its own
    trie_s = time.perf_counter() - start
    hf_genrec.recommend(model, processor, histories[: args.batch_size], k=args.top_k, num_beams=args.beams)  # warm-up
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        hf_genrec.recommend(model, processor, histories, k=args.top_k, num_beams=args.beams, batch_size=args.batch_size)
        best = min(best, time.perf_counter() - start)
    return best / len(histories) * 1000, trie_s


@torch.inference_mode()
def sasrec_exact_topk(n: int, histories: list[list[int]], args) -> tuple[float, float]:
    """The package's SASRec (``SASRecForSequentialRecommendation``, 2 blocks, ``--sasrec-dim`` wide) ranking
    all N items exactly through ``hf_genrec.recommend`` (``item_scores``: hidden [B, d] @ item embeddings
    [N, d]^T, then a top-k); ms per user, and of its encoder pass alone (best of two passes)."""
    import hf_genrec
    from hf_genrec.models.sasrec import SASRecConfig, SASRecForSequentialRecommendation, SASRecProcessor

    torch.manual_seed(0)
    config = SASRecConfig(num_items=n, hidden_size=args.sasrec_dim, max_position_embeddings=args.history)
    model = SASRecForSequentialRecommendation(config).eval()
    processor = SASRecProcessor(list(range(1, n + 1)), max_history=args.history)
    hf_genrec.recommend(model, processor, histories[: args.batch_size], k=args.top_k)  # warm-up
    best_total = best_encoder = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        hf_genrec.recommend(model, processor, histories, k=args.top_k, batch_size=args.batch_size)
        best_total = min(best_total, time.perf_counter() - start)
        start = time.perf_counter()
        for first in range(0, len(histories), args.batch_size):
            model.encode(**processor(histories[first : first + args.batch_size]))
        best_encoder = min(best_encoder, time.perf_counter() - start)
    return best_total / len(histories) * 1000, best_encoder / len(histories) * 1000


def run_one_size(n: int, args) -> dict:
    log(f"{n} items: embeddings")
    embeddings = clustered_embeddings(n, args.dim, min(args.clusters, n), args.seed)
    rss_before_build = rss_peak_mb()
    with tempfile.TemporaryDirectory(prefix="hf_genrec_scale_") as scratch:
        log(f"{n} items: semantic IDs (RQ-KMeans)")
        build, build_s = build_ids(n, embeddings, args.codebook_size, args.seed, scratch)
    id_build_peak = rss_peak_mb()
    del embeddings
    table = build.table
    log(f"{n} items: built in {build_s:.1f} s, {build.summary['codebook_sizes']}; model")
    model, processor, collator = tiger_parts(table, args.shape)
    histories = power_law_histories(n, max(args.users, (args.train_steps + 1) * args.train_batch), args.history + 1, args.zipf, args.seed)
    log(f"{n} items: training steps")
    step_s = training_step_s(model, collator, histories, args.train_batch, args.train_steps)
    users = [h[:-1] for h in histories[: args.users]]
    log(f"{n} items: decoding")
    with torch.inference_mode():
        decode_ms, trie_s = decode_ms_per_user(model, processor, users, args)
    from hf_genrec.generation.ranking import get_id_trie

    trie_mb = get_id_trie(processor).memory_bytes() / 2**20
    log(f"{n} items: exact scoring")
    sasrec_ms, sasrec_encoder_ms = sasrec_exact_topk(n, users, args)
    return {
        "items": n,
        "id_build_s": round(build_s, 2),
        "id_build_fit_s": build.summary["fit_seconds"],
        "codebook_sizes": build.summary["codebook_sizes"],
        "collision_rate": build.summary["collision_rate"],
        "max_items_per_prefix": build.summary["max_items_per_prefix"],
        "rss_before_id_build_mb": round(rss_before_build, 1),
        "id_build_peak_rss_mb": round(id_build_peak, 1),
        "id_table_mb": round(table_memory_mb(table), 1),
        "trie_mb": round(trie_mb, 1),
        "trie_build_s": round(trie_s, 3),
        "train_step_s": round(step_s, 3),
        "decode_ms_per_user": round(decode_ms, 3),
        "sasrec_ms_per_user": round(sasrec_ms, 3),
        "sasrec_encoder_ms_per_user": round(sasrec_encoder_ms, 3),
        "peak_rss_mb": round(rss_peak_mb(), 1),
    }


def text_encoding_items_per_s(count: int = 512) -> float:
    """Items/s of the bundled sentence encoder on product-title-like texts (linear in the catalogue)."""
    from hf_genrec.item_encoders import encode_item_texts

    rng = np.random.default_rng(0)
    words = ["organic", "serum", "matte", "lipstick", "vitamin", "cream", "brush", "nail", "polish", "shampoo", "oil",
             "travel", "size", "ounce", "pack", "men", "women", "daily", "repair", "glow", "brand", "beauty", "care"]
    texts = [" ".join(rng.choice(words, size=rng.integers(10, 30))) for _ in range(count)]
    with tempfile.TemporaryDirectory() as cache:
        encode_item_texts(texts[:64], cache_dir=cache, show_progress_bar=False, use_cache=False)  # loads the model
        start = time.perf_counter()
        encode_item_texts(texts, cache_dir=cache, show_progress_bar=False, use_cache=False)
    return count / (time.perf_counter() - start)


def crossing(sizes: list[int], generative: list[float], exact: list[float]) -> dict:
    """Where exact scoring (linear in N) becomes slower than generative decoding (flat): measured or extrapolated."""
    for i in range(1, len(sizes)):
        before, after = exact[i - 1] - generative[i - 1], exact[i] - generative[i]
        if before < 0 <= after:  # interpolate the difference linearly in N between the two sizes
            n = sizes[i - 1] + (sizes[i] - sizes[i - 1]) * (-before) / (after - before)
            return {"crossing_items": int(round(n)), "crossing": "interpolated between measured sizes"}
    if len(sizes) >= 2:
        slope, intercept = np.polyfit(sizes, exact, 1)
        level = float(np.mean(generative))
        if slope > 0:
            n = (level - intercept) / slope
            where = "extrapolated" if n > sizes[-1] or n < sizes[0] else "estimated"
            return {"crossing_items": int(round(n)), "crossing": f"{where} (exact scoring fit linear in N, decoding at its mean)"}
    return {"crossing_items": None, "crossing": "not determined"}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.one_size is not None:
        print(json.dumps(run_one_size(args.one_size, args)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *passthrough, "--one-size", str(n)],
            stdout=subprocess.PIPE, text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"scale.py: the run for {n} items failed (exit {proc.returncode})")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(result), flush=True)
        results.append(result)
    summary = {
        "bench": "scale",
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "dim": args.dim,
        "shape": args.shape,
        "beams": args.beams,
        "batch_size": args.batch_size,
        "catalogue_sizes": sizes,
        **{key: [r[key] for r in results] for key in (
            "id_build_s", "decode_ms_per_user", "sasrec_ms_per_user", "peak_rss_mb", "id_build_peak_rss_mb",
            "train_step_s", "id_table_mb", "trie_mb", "sasrec_encoder_ms_per_user", "max_items_per_prefix",
        )},
    }
    decode = summary["decode_ms_per_user"]
    summary["decode_ratio_largest_to_smallest"] = round(decode[-1] / decode[0], 2)
    summary.update(crossing(sizes, decode, summary["sasrec_ms_per_user"]))
    if not args.skip_text:
        rate = text_encoding_items_per_s()
        summary["text_encode_items_per_s"] = round(rate, 1)
        summary["text_encode_s_estimate"] = [round(n / rate, 1) for n in sizes]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
