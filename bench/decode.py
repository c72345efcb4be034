"""Decoding throughput: fast fixed-length beam search vs generate() with the two constraints.

Prints one JSON line: users/s of each decoder per batch size, the speed-up over
generate()+prefix_allowed_tokens_fn and the fraction of users whose top-k lists are identical.
Users are a fixed random sample of amazon-beauty's test users with their real histories (last 20
items), batched in order of history length as evaluation does; ``--histories random`` uses
synthetic full-length histories instead (the worst case).  ``--full-test`` also times the fast
decoder on every test user (22,363), the figure behind "full evaluation in under 3 minutes".

    python bench/decode.py                      # random-init TIGER of the paper's size, random IDs
    python bench/decode.py --model DIR          # a trained checkpoint (tokenizer + semantic_ids.json in DIR)
    python bench/decode.py --semantic-ids FILE  # a real ID table with a random-init model
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from hf_genrec.generation.length_order import length_order
from hf_genrec.semantic_ids.constraints import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from hf_genrec.semantic_ids.id_trie import build_id_trie
from hf_genrec.generation import fast_beam_search
from hf_genrec.generation.fast_beam_search import cpu_shard_count
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
import hf_genrec  # noqa: F401  (registers the Auto classes)
from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation
from hf_genrec.semantic_ids.id_table import SemanticIdTable


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="trained TIGER checkpoint directory (default: random init)")
    p.add_argument("--semantic-ids", help="semantic_ids.json to use (default: synthesised, Beauty-shaped)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--users", type=int, default=256, help="users decoded per batch size (default 256)")
    p.add_argument("--batch-sizes", default="64,256")
    p.add_argument("--beams", type=int, default=20)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--histories", default="beauty-test", choices=["beauty-test", "random"],
                   help="real amazon-beauty test histories (default) or random ones of --history items")
    p.add_argument("--data-dir", default=None, help="default: $HF_GENREC_DATA or ../shared/data")
    p.add_argument("--history", type=int, default=20, help="items per history (default 20)")
    p.add_argument("--items", type=int, default=12101, help="synthetic catalogue size for --histories random")
    p.add_argument("--full-test", action="store_true", help="also time the fast decoder on all amazon-beauty test users")
    p.add_argument("--skip-generate", action="store_true", help="time only the fast decoder")
    p.add_argument("--profile", action="store_true",
                   help="also profile the one-slice fast decoder at the first batch size (op table on stderr)")
    p.add_argument("--shards", type=int, default=None,
                   help="threads the fast decoder splits a batch over (default: its CPU default, cpu_shard_count)")
    p.add_argument("--repeats", type=int, default=3,
                   help="time every decoder this many times on every batch and keep the fastest (default 3)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def beauty_test_rows(args) -> tuple[list[dict], list[int]]:
    """amazon-beauty's test rows (user id, last 20 items, target) and its catalogue's item ids."""
    from hf_genrec.data import load_rec_dataset

    dataset = load_rec_dataset("amazon-beauty", args.data_dir)
    return dataset.splits(20)["test"].to_list(), list(dataset.catalogue.item_ids)


def build(args, catalogue: list[int] | None) -> tuple[TigerForGenerativeRecommendation, GenRecTokenizer]:
    if args.model:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        return AutoModelForSeq2SeqLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    if args.semantic_ids:
        table = SemanticIdTable.load(args.semantic_ids)
    else:  # Beauty-shaped random IDs: 3 x 256 codes + disambiguation
        items = catalogue if catalogue is not None else list(range(args.items))
        rng = np.random.default_rng(args.seed)
        table = SemanticIdTable.from_content_codes(items, rng.integers(0, 256, (len(items), 3)), 256, method="random")
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=2000)
    torch.manual_seed(args.seed)
    return TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(tokenizer)), tokenizer


def sample_users(args, rows: list[dict] | None, item_ids: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """``args.users`` (history, user id) pairs in the order evaluation decodes them (by history length)."""
    rng = np.random.default_rng(args.seed + 1)
    if rows is None:
        histories = [item_ids[rng.integers(0, len(item_ids), args.history)].tolist() for _ in range(args.users)]
        users = rng.integers(0, 10**6, args.users).tolist()
        return histories, users
    picked = [rows[i] for i in rng.choice(len(rows), size=min(args.users, len(rows)), replace=False)]
    order, _ = length_order([len(r["history"]) for r in picked])
    return [picked[i]["history"] for i in order], [picked[i]["user_id"] for i in order]


def encode_batch(tokenizer: GenRecTokenizer, histories: list[list[int]], users: list[int]):
    """Encoder inputs as evaluation builds them: user tokens only for a tokenizer that has them."""
    return tokenizer.batch_encode_histories(histories, users if tokenizer.num_user_buckets else None)


def time_full_test(model, tokenizer, tables, rows: list[dict], args, batch_size: int) -> dict:
    """Seconds for the fast decoder to rank every test user, batched by history length as evaluation does."""
    order, _ = length_order([len(r["history"]) for r in rows])
    elapsed = 0.0
    for start in range(0, len(order), batch_size):
        chunk = [rows[i] for i in order[start : start + batch_size]]
        enc = encode_batch(tokenizer, [r["history"] for r in chunk], [r["user_id"] for r in chunk])
        ids, mask = enc["input_ids"].to(args.device), enc["attention_mask"].to(args.device)
        with torch.inference_mode():
            _, dt = timed(lambda: fast_beam_search(model, ids, mask, tables, args.beams, args.top_k, num_shards=args.shards), args.device)
        elapsed += dt
    return {"users": len(rows), "batch_size": batch_size, "seconds": round(elapsed, 1), "users_per_s": round(len(rows) / elapsed, 1)}


@torch.no_grad()
def teacher_forced_scores(model, input_ids, attention_mask, codes: torch.Tensor) -> torch.Tensor:
    """Beam-search scores of given IDs: the sum over levels of log p(code | prefix), as both decoders score.

    ``codes`` [B, n, L] holds n IDs per user; returns [B, n].
    """
    batch, n, levels = codes.shape
    enc, enc_mask = model.encode_for_decoding(input_ids=input_ids, attention_mask=attention_mask)
    flat = codes.reshape(batch * n, levels)
    total = torch.zeros(batch * n, device=codes.device)
    for level in range(levels):
        logp, _ = model.level_logits(level, flat[:, :level], enc, enc_mask)
        total += logp.float().gather(1, flat[:, level : level + 1]).squeeze(1)
    return total.reshape(batch, n).cpu()


def count_identical(model, table, batches, fast_items, fast_scores, gen_items, tol: float = 1e-4) -> tuple[float, float]:
    """Fractions of users whose top-k lists are identical, and identical ties aside.

    Ties aside: generate()'s items, rescored by teacher forcing and sorted, have the fast decoder's
    score at every rank (within ``tol``), so every difference is between items of equal score.
    Only users whose lists differ are rescored."""
    exact = (gen_items == fast_items).all(axis=1)
    tie_ok = exact.copy()
    offset = 0
    for ids, mask in batches:
        rows = range(offset, offset + ids.shape[0])
        differ = [r for r in rows if not exact[r]]
        if differ:
            local = torch.as_tensor([r - offset for r in differ])
            codes = [[table.codes_of(int(i)) if i >= 0 else table.codes_of(table.item_ids[0]) for i in gen_items[r]] for r in differ]
            scores = teacher_forced_scores(model, ids[local], mask[local], torch.as_tensor(codes, device=ids.device)).numpy()
            for j, r in enumerate(differ):
                ranked = -np.sort(-scores[j])
                tie_ok[r] = bool((gen_items[r] >= 0).all() and np.allclose(ranked, fast_scores[r], atol=tol, rtol=0))
        offset += ids.shape[0]
    return float(exact.mean()), float(tie_ok.mean())


def profile_fast_decoder(model, tables, batches, args) -> dict:
    """Where the one-slice fast decoder's time goes: the encoder's share (timed alone) and aten::mm's (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    def decode():
        for ids, mask in batches:
            fast_beam_search(model, ids, mask, tables, args.beams, args.top_k, num_shards=1)

    with torch.inference_mode():
        decode()  # warm-up
        _, total = timed(decode, args.device)
        _, encoder = timed(lambda: [model.encode_for_decoding(input_ids=i, attention_mask=m) for i, m in batches], args.device)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            decode()
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    self_total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key == "aten::mm")
    return {"encoder_share": round(encoder / total, 3), "aten_mm_share": round(mm / self_total, 3)}


def timed(fn, device: str, repeats: int = 1):
    """``fn``'s output and its fastest time over ``repeats`` calls (the machine's noise only ever adds time)."""
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, best


def main(argv=None) -> dict:
    args = parse_args(argv)
    rows, catalogue = beauty_test_rows(args) if args.histories == "beauty-test" or args.full_test else (None, None)
    model, tokenizer = build(args, catalogue)
    model.to(args.device).eval()
    table = tokenizer.semantic_id_table
    tables = build_id_trie(table, args.device)
    item_ids = np.asarray(table.item_ids)
    histories, users = sample_users(args, rows if args.histories == "beauty-test" else None, item_ids)
    n_users = len(histories)
    prefix_fn = make_prefix_allowed_tokens_fn(tokenizer)
    processor = SemanticIdLogitsProcessor(tables, tokenizer.level_offsets, tokenizer.eos_token_id)
    k, beams = args.top_k, args.beams
    gen_kwargs = dict(
        num_beams=beams, num_return_sequences=k, length_penalty=0.0, do_sample=False, max_new_tokens=table.num_levels
    )
    result = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "items": len(table),
        "levels": table.num_levels,
        "users": len(histories),
        "histories": args.histories,
        "mean_history_items": round(float(np.mean([len(h) for h in histories])), 2),
        "beams": beams,
        "top_k": k,
        "repeats": args.repeats,  # each decoder's time on a batch: its fastest of this many calls, after a warm-up call
        "model": args.model or "random-init TIGER (4+4 layers, d_model 128)",
        "batches": {},
    }
    decoders = {  # name -> decode(ids, mask)
        "fast": lambda ids, mask: fast_beam_search(model, ids, mask, tables, beams, k, num_shards=args.shards),
        "one": lambda ids, mask: fast_beam_search(model, ids, mask, tables, beams, k, num_shards=1),
        "prefix": lambda ids, mask: model.generate(
            input_ids=ids, attention_mask=mask, prefix_allowed_tokens_fn=prefix_fn, **gen_kwargs
        ),
        "processor": lambda ids, mask: model.generate(
            input_ids=ids, attention_mask=mask, logits_processor=[processor], **gen_kwargs
        ),
    }
    if args.skip_generate:
        decoders = {name: decoders[name] for name in ("fast", "one")}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        outputs = {name: [] for name in decoders}
        seconds = dict.fromkeys(decoders, 0.0)
        batches = []
        for start in range(0, n_users, bs):
            enc = encode_batch(tokenizer, histories[start : start + bs], users[start : start + bs])
            batches.append((enc["input_ids"].to(args.device), enc["attention_mask"].to(args.device)))
        with torch.inference_mode():
            for decode in decoders.values():  # untimed warm-up: first-call costs (allocator, thread pools) are no one's
                decode(*batches[0])
            for ids, mask in batches:
                for name, decode in decoders.items():
                    out, dt = timed(lambda: decode(ids, mask), args.device, args.repeats)
                    seconds[name] += dt
                    outputs[name].append(out)
                print(f"batch size {bs}: {min(len(outputs['fast']) * bs, n_users)}/{n_users} users", file=sys.stderr)
        t_fast, t_one = seconds["fast"], seconds["one"]
        fast_rows = [rows.cpu() for rows, _ in outputs["fast"]]
        fast_scores = [scores.cpu() for _, scores in outputs["fast"]]
        unsharded_same = sum(int((one.cpu() == fast).all(dim=1).sum()) for (one, _), fast in zip(outputs["one"], fast_rows))
        if not args.skip_generate:
            t_prefix, t_proc = seconds["prefix"], seconds["processor"]
            prefix_rows = [out.cpu() for out in outputs["prefix"]]
            proc_rows = [out.cpu() for out in outputs["processor"]]
        shards = args.shards if args.shards is not None else cpu_shard_count(bs, torch.device(args.device))
        entry = {
            "fast_users_per_s": round(n_users / t_fast, 1),
            "fast_shards": shards,
            "fast_one_shard_users_per_s": round(n_users / t_one, 1),
            "identical_topk_sharded_vs_one_shard": unsharded_same / n_users,
        }
        if not args.skip_generate:
            fast_items = np.where((r := torch.cat(fast_rows).numpy()) >= 0, item_ids[np.maximum(r, 0)], -1)
            scores = torch.cat(fast_scores).numpy()
            agree = {}
            for name, seqs in (("prefix_fn", prefix_rows), ("processor", proc_rows)):
                decoded = np.array([-1 if i is None else i for i in tokenizer.decode_items(torch.cat(seqs))])
                agree[name] = count_identical(model, table, batches, fast_items, scores, decoded.reshape(n_users, k))
            entry.update(
                generate_prefix_fn_users_per_s=round(n_users / t_prefix, 2),
                generate_processor_users_per_s=round(n_users / t_proc, 2),
                speedup_vs_prefix_fn=round(t_prefix / t_fast, 1),
                speedup_vs_processor=round(t_proc / t_fast, 1),
                identical_topk_vs_prefix_fn=agree["prefix_fn"][0],
                identical_topk_vs_processor=agree["processor"][0],
                identical_topk_ties_aside_vs_prefix_fn=agree["prefix_fn"][1],
                identical_topk_ties_aside_vs_processor=agree["processor"][1],
            )
        result["batches"][str(bs)] = entry
        if args.profile and "profile" not in result:
            result["profile"] = {"batch_size": bs, **profile_fast_decoder(model, tables, batches, args)}
    if args.full_test:
        largest = max(int(b) for b in args.batch_sizes.split(","))
        result["full_test"] = time_full_test(model, tokenizer, tables, rows, args, largest)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
