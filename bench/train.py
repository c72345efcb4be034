"""Training throughput: the TIGER step vs a plain T5ForConditionalGeneration of the same size.

The TIGER step uses what hf-genrec train uses (dynamic padding of length-grouped batches, per-level
output heads); the baseline is a stock `T5ForConditionalGeneration` (full-vocabulary head) fed
batches padded to the maximum length.  Both see the same Beauty training rows.  Prints one JSON
line: sequences/s of each, their ratio, and peak memory (CUDA: max allocated; CPU: peak RSS of a
fresh process per variant).

    python bench/train.py [--steps 8] [--batch-size 256] [--device cpu|cuda] [--semantic-ids DIR]
                          [--shape paper|cpu-recipe] [--bf16] [--attn-implementation eager|sdpa|hf_genrec_eager] [--dropout P]

``--shape``, ``--bf16``, ``--attn-implementation`` and ``--dropout`` apply to both variants alike, so
the ratio isolates what the TIGER step itself does (dynamic padding, per-level heads); running the
script once per setting shows what each setting buys.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time

import numpy as np
import torch


SHAPES = {  # the paper's TIGER, and training_args/tiger-beauty-cpu.yaml's reduced one
    "paper": dict(d_model=128, d_ff=1024, d_kv=64, num_heads=6, num_layers=4, num_decoder_layers=4),
    "cpu-recipe": dict(d_model=128, d_ff=512, d_kv=32, num_heads=6, num_layers=2, num_decoder_layers=2),
}


def make_batches(args) -> tuple[list[list[dict]], object]:
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from hf_genrec.data import load_rec_dataset
    from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    dataset = load_rec_dataset("amazon-beauty", args.data_dir)
    if args.semantic_ids:
        table = SemanticIdTable.load(args.semantic_ids)
    else:  # Beauty-shaped random IDs: 3 x 256 codes + disambiguation
        rng = np.random.default_rng(0)
        table = SemanticIdTable.from_content_codes(dataset.catalogue.item_ids, rng.integers(0, 256, (len(dataset.catalogue), 3)), 256)
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=2000)
    train = dataset.splits(20)["train"]
    rng = np.random.default_rng(1)
    rows = train.select(rng.choice(len(train), size=args.batch_size * (args.steps + 2) * 4, replace=False).tolist())
    lengths = [len(h) for h in rows["history"]]
    sampler = LengthGroupedSampler(args.batch_size, lengths=lengths, generator=torch.Generator().manual_seed(0))
    order = list(sampler)[: args.batch_size * (args.steps + 2)]
    rows = rows.to_list()
    return [[rows[i] for i in order[b : b + args.batch_size]] for b in range(0, len(order), args.batch_size)], tokenizer


def run_variant(variant: str, args, queue) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    from hf_genrec.models.tiger import TigerConfig, TigerDataCollator, TigerForGenerativeRecommendation, TigerProcessor

    torch.manual_seed(0)
    batches, tokenizer = make_batches(args)
    shape = dict(SHAPES[args.shape], dropout_rate=args.dropout)
    if variant == "tiger":
        model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer, **shape))
        collate = TigerDataCollator(TigerProcessor(tokenizer, max_history=20))
    else:
        model = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **shape))
        base = TigerDataCollator(TigerProcessor(tokenizer, max_history=20), pad_to_multiple_of=1 + 20 * tokenizer.num_levels)
        collate = base  # padded to the maximum length (user token + 20 items)
    if args.attn_implementation:
        model.set_attn_implementation(args.attn_implementation)
    device = torch.device(args.device)
    model.to(device).train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seen, elapsed = 0, 0.0
    for step, rows in enumerate(batches):
        batch = {k: v.to(device) for k, v in collate(rows).items()}
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:  # warm-up steps are not timed
            elapsed += time.perf_counter() - start
            seen += len(rows)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"variant": variant, "sequences_per_s": seen / elapsed, "peak_mib": peak, "parameters": params})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--semantic-ids", default=None)
    parser.add_argument("--shape", default="paper", choices=sorted(SHAPES))
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (as TrainingArguments' bf16)")
    parser.add_argument("--attn-implementation", default=None, help="eager, sdpa or hf_genrec_eager (default: transformers' choice)")
    parser.add_argument("--dropout", type=float, default=0.1)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for variant in ("tiger", "plain_t5_padded"):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_variant, args=(variant, args, queue))
        proc.start()
        results[variant] = queue.get()
        proc.join()
    tiger, plain = results["tiger"], results["plain_t5_padded"]
    print(json.dumps({
        "bench": "train",
        "device": args.device,
        "batch_size": args.batch_size,
        "shape": args.shape,
        "bf16": args.bf16,
        "attn_implementation": args.attn_implementation or "default",
        "dropout": args.dropout,
        "torch_threads": torch.get_num_threads(),
        "timed_steps": args.steps,
        "tiger_sequences_per_s": round(tiger["sequences_per_s"], 1),
        "plain_t5_padded_sequences_per_s": round(plain["sequences_per_s"], 1),
        "speedup": round(tiger["sequences_per_s"] / plain["sequences_per_s"], 2),
        "tiger_peak_mib": round(tiger["peak_mib"], 1),
        "plain_t5_padded_peak_mib": round(plain["peak_mib"], 1),
        "parameters": {"tiger": tiger["parameters"], "plain_t5": plain["parameters"]},
    }))


if __name__ == "__main__":
    sys.exit(main())
