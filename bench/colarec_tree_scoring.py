"""How much a GID tree costs a ranking, by how its nodes are scored (ColaRec's ``node_scoring``).

Takes the LightGCN vectors and GIDs a ColaRec run built (``OUTPUT/item_tokenizer``), represents each
validation user by the mean of their training items' vectors (ranked flat, as good as LightGCN's own
user vector, also reported), and ranks the catalogue three ways: the flat dot product; a beam over the GID tree whose nodes
are scored by their own row (the mean of their items' vectors: ``node_scoring: embedding`` at its
LightGCN start); and a beam whose nodes are scored by the log-sum-exp of their items' scores
(``node_scoring: item_logsumexp``).  Scores come from the package's ``ColaRecForGenerativeRecommendation
.level_scores``; training items are excluded after the beam, as the evaluator does.  Prints one JSON line.

    python bench/colarec_tree_scoring.py --item-tokenizer runs/colarec-phones-cpu/item_tokenizer
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--item-tokenizer", required=True, help="a ColaRec run's item_tokenizer folder (LightGCN vectors + GIDs)")
    p.add_argument("--dataset", default="amazon-phones")
    p.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")
    p.add_argument("--num-beams", type=int, default=40)
    p.add_argument("--max-users", type=int, default=3000, help="the first N validation users (sorted ids); 0: all")
    p.add_argument("--temperatures", default="0.3,1,3", help="score scales tried for each tree scoring (best reported)")
    return p.parse_args(argv)


def tree_model(table, vectors, scoring: str):
    """A ColaRec model whose node-scoped code rows are the LightGCN vectors (no projection: d_model = their width)."""
    from hf_genrec.models.colarec import ColaRecConfig, ColaRecForGenerativeRecommendation
    from hf_genrec.models.colarec.collaborative_init import init_from_collaborative_vectors
    from hf_genrec.models.colarec.family import gid_tree

    tree, tree_sizes = gid_tree(table)
    dim = vectors.item_embeddings.shape[1]
    config = ColaRecConfig(
        vocab_size=8, num_items=table.num_items, num_users=1, codebook_sizes=table.codebook_sizes, d_model=dim,
        d_kv=8, d_ff=8, num_layers=1, num_heads=1, code_embedding_scope="node", node_scoring=scoring,
        gid_tree_sizes=tree_sizes,
    )
    model = ColaRecForGenerativeRecommendation(config).eval()
    model.set_gid_tree(tree)
    init_from_collaborative_vectors(model, vectors.item_embeddings, item_codes=torch.as_tensor(table.codes))
    return model


@torch.no_grad()
def tree_rank(model, users: torch.Tensor, excluded: list[set[int]], beams: int, k: int) -> torch.Tensor:
    """Top-``k`` item rows per user by a beam over the GID tree with the model's level scores."""
    codes = torch.zeros(users.shape[0], 1, 0, dtype=torch.long)  # [U, beams, prefix]
    scores = torch.zeros(users.shape[0], 1)
    for level in range(model.config.num_levels):
        n = codes.shape[1]
        flat = codes.reshape(users.shape[0] * n, level)
        parents = model.prefix_nodes(flat)[:, -1] if level else torch.zeros(flat.shape[0], dtype=torch.long)
        logp = torch.log_softmax(model.level_scores(level, users.repeat_interleave(n, 0), parents), dim=-1)
        total = (scores.reshape(-1, 1) + logp).reshape(users.shape[0], -1)
        keep = min(beams, total.shape[1])
        scores, index = total.topk(keep, dim=1)
        size = logp.shape[1]
        parent, code = index // size, index % size
        codes = torch.cat([codes.gather(1, parent[..., None].expand(-1, -1, level)), code[..., None]], dim=2)
    leaves = model.prefix_nodes(codes.reshape(-1, codes.shape[2]))[:, -1].reshape(codes.shape[:2])
    ranked = []
    for row, seen in zip(leaves.tolist(), excluded):
        items = [i for i in row if i >= 0 and i not in seen][:k]
        ranked.append(items + [-1] * (k - len(items)))
    return torch.tensor(ranked)


def main(argv=None) -> None:
    args = parse_args(argv)
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.evaluation.metrics import pad_lists, ranking_metrics
    from hf_genrec.item_tokenizers.lightgcn import LightGCNResult, evaluate_ranking
    from hf_genrec.item_tokenizers.colarec_gids import LIGHTGCN_FILE, item_rows_by_user
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    start = time.perf_counter()
    table = SemanticIdTable.load(f"{args.item_tokenizer}/semantic_ids.json")
    vectors = LightGCNResult.load(f"{args.item_tokenizer}/{LIGHTGCN_FILE}")
    dataset = load_rec_dataset(args.dataset, args.data_dir)
    history = item_rows_by_user(table, dataset.train_interactions())
    targets = item_rows_by_user(table, dataset.valid)
    user_ids = [u for u in sorted(targets) if history.get(u)][: args.max_users or None]
    items = vectors.item_embeddings.float()
    users = torch.stack([items[history[u]].mean(0) for u in user_ids])
    excluded = [set(history[u]) for u in user_ids]
    gold = pad_lists([targets[u] for u in user_ids])
    k = 20

    seen_pairs = [(row, item) for row, seen in enumerate(excluded) for item in seen]
    target_pairs = [(row, item) for row, u in enumerate(user_ids) for item in targets[u]]

    def flat_ranking(user_vectors: torch.Tensor) -> dict:
        return evaluate_ranking(user_vectors, items, seen_pairs, target_pairs, ks=(k,))

    lightgcn_row = {user: row for row, user in enumerate(sorted(history))}  # LightGCN numbers sorted training users
    result = {"dataset": args.dataset, "users": len(user_ids), "num_beams": args.num_beams,
              "flat, LightGCN's user vectors": flat_ranking(vectors.user_embeddings.float()[[lightgcn_row[u] for u in user_ids]]),
              "flat, mean of the user's item vectors": flat_ranking(users)}
    for scoring in ("embedding", "item_logsumexp"):
        model = tree_model(table, vectors, scoring)
        # level_scores multiplies states by d_model**-0.5; rows were rescaled by init: undo both, then scale
        scale = float(model.code_embeddings[-1].weight.detach().norm(dim=1).mean() / items.norm(dim=1).mean())
        best = None
        for temperature in (float(t) for t in args.temperatures.split(",")):
            states = users * (temperature * model.config.d_model**0.5 / scale)
            metrics = ranking_metrics(tree_rank(model, states, excluded, args.num_beams, k), gold, ks=(k,))
            if best is None or metrics[f"ndcg@{k}"] > best[1][f"ndcg@{k}"]:
                best = (temperature, metrics)
        result[f"tree, node_scoring {scoring}"] = {"temperature": best[0], **best[1]}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
