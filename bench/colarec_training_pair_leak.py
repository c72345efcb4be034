"""How much more LightGCN's vectors say about a *training* pair than about a validation pair.

ColaRec's split is random per user, so one of a user's training items and one of their validation
items are exchangeable: a representation that generalises ranks both alike.  For each user (with at
least three training items) this ranks, over the whole catalogue with the user's other training
items excluded, (a) one training item left out of the user's vector and (b) the validation items,
with the user represented by LightGCN's own vector or by the mean of their (other) items' vectors.
LightGCN was trained on every training edge, so (a) > (b) measures what its vectors memorised:
the inflation a model started from them meets on its training rows and never at validation.
Prints one JSON line.

    python bench/colarec_training_pair_leak.py --item-tokenizer runs/colarec-phones-cpu/item_tokenizer
"""

from __future__ import annotations

import argparse
import json
import random

import torch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--item-tokenizer", required=True, help="a ColaRec run's item_tokenizer folder (LightGCN vectors + GIDs)")
    p.add_argument("--dataset", default="amazon-phones")
    p.add_argument("--data-dir", default=None, help="data directory (default: $HF_GENREC_DATA or ../shared/data)")
    p.add_argument("--max-users", type=int, default=8000, help="the first N eligible users (sorted ids); 0: all")
    p.add_argument("--seed", type=int, default=0, help="picks the training item left out of each user")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_tokenizers.colarec_gids import LIGHTGCN_FILE, item_rows_by_user
    from hf_genrec.item_tokenizers.lightgcn import LightGCNResult, evaluate_ranking
    from hf_genrec.semantic_ids.id_table import SemanticIdTable

    table = SemanticIdTable.load(f"{args.item_tokenizer}/semantic_ids.json")
    vectors = LightGCNResult.load(f"{args.item_tokenizer}/{LIGHTGCN_FILE}")
    dataset = load_rec_dataset(args.dataset, args.data_dir)
    history = item_rows_by_user(table, dataset.train_interactions())
    validation = item_rows_by_user(table, dataset.valid)
    users = [u for u in sorted(validation) if len(history.get(u, ())) >= 3][: args.max_users or None]
    items = vectors.item_embeddings.float()
    lightgcn_row = {user: row for row, user in enumerate(sorted(history))}  # LightGCN numbers sorted training users
    user_vectors = vectors.user_embeddings.float()[[lightgcn_row[u] for u in users]]
    rng = random.Random(args.seed)

    def ranking(targets_of) -> dict:
        means, seen, targets = [], [], []
        for row, user in enumerate(users):
            others, wanted = targets_of(user)
            means.append(items[others].mean(0))
            seen += [(row, i) for i in others]
            targets += [(row, i) for i in wanted]
        return {
            "LightGCN user vector": evaluate_ranking(user_vectors, items, seen, targets),
            "mean of the other items": evaluate_ranking(torch.stack(means), items, seen, targets),
        }

    def training_item(user):
        target = rng.choice(history[user])
        return [i for i in history[user] if i != target], [target]

    result = {
        "dataset": args.dataset,
        "users": len(users),
        "a training item (an edge LightGCN trained on)": ranking(training_item),
        "the validation items (edges it never saw)": ranking(lambda user: (history[user], validation[user])),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
