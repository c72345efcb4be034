"""LightGCN: correct graph normalisation, unseen negatives, determinism, and it actually learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_genrec.errors import InvalidInputError
from hf_genrec.item_tokenizers.lightgcn import LightGCNResult, _NegativeSampler, evaluate_ranking, index_interactions, normalized_adjacency, train_lightgcn


def community_graph(n_groups=4, users_per_group=30, items_per_group=25, per_user=6, seed=0):
    """Users of group g interact only with items of group g; one extra pair per user is held out."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for g in range(n_groups):
        items = np.arange(g * items_per_group, (g + 1) * items_per_group)
        for u in range(g * users_per_group, (g + 1) * users_per_group):
            chosen = rng.choice(items, size=per_user + 1, replace=False)
            train += [(u, int(i)) for i in chosen[:-1]]
            held.append((u, int(chosen[-1])))
    return np.array(train), np.array(held), n_groups * users_per_group, n_groups * items_per_group


def test_normalized_adjacency_is_symmetric_degree_normalised():
    pairs = np.array([[0, 0], [0, 1], [1, 1], [1, 1]])  # duplicate pair counted once
    adj = normalized_adjacency(pairs, num_users=2, num_items=2).to_dense()
    assert torch.allclose(adj, adj.T)
    # degrees: u0=2, u1=1, i0=1, i1=2 -> A[u0, i1] = 1/sqrt(2*2)
    assert adj[0, 2 + 1].item() == pytest.approx(0.5)
    assert adj[1, 2 + 1].item() == pytest.approx(1 / np.sqrt(2))
    assert adj[0, 1].item() == 0.0 and adj[2, 3].item() == 0.0  # bipartite


def test_negatives_are_never_training_items():
    train, _, n_users, n_items = community_graph()
    sampler = _NegativeSampler(train, n_items, np.random.default_rng(0))
    users = np.repeat(np.arange(n_users), 50)
    negatives = sampler(users)
    seen = {(int(u), int(i)) for u, i in train}
    assert not any((int(u), int(j)) in seen for u, j in zip(users, negatives))
    assert len(set(negatives.tolist())) > n_items // 2  # not degenerate


def test_lightgcn_learns_communities_and_is_deterministic(tmp_path):
    train, held, n_users, n_items = community_graph()
    kwargs = dict(dim=16, layers=2, epochs=30, lr=0.02, batch_size=256, seed=7, eval_interactions=held, eval_every=10, eval_k=20)
    result = train_lightgcn(train, n_users, n_items, **kwargs)
    assert [r["epoch"] for r in result.history if "recall@20" in r] == [10, 20, 30]
    best = max(r["recall@20"] for r in result.history if "recall@20" in r)
    # a random ranking of the 94 unseen items hits the held-out item with prob 20/94 ~ 0.21;
    # the community structure puts it among the 19 unseen items of the user's own group
    assert best > 0.8
    assert result.best_epoch in (10, 20, 30)
    assert result.user_embeddings.shape == (n_users, 16) and result.item_embeddings.shape == (n_items, 16)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # the returned embeddings reproduce the best recorded figure
    again = evaluate_ranking(result.user_embeddings, result.item_embeddings, train, held, ks=(20,))
    assert again["recall@20"] == pytest.approx(best)
    # same seed -> same embeddings
    second = train_lightgcn(train, n_users, n_items, **{**kwargs, "epochs": 3, "eval_interactions": None})
    third = train_lightgcn(train, n_users, n_items, **{**kwargs, "epochs": 3, "eval_interactions": None})
    assert torch.equal(second.item_embeddings, third.item_embeddings)
    path = tmp_path / "lightgcn.safetensors"
    result.save(path)
    loaded = LightGCNResult.load(path)
    assert torch.equal(loaded.item_embeddings, result.item_embeddings) and loaded.best_epoch == result.best_epoch


def test_lightgcn_beats_random_on_real_phones_subset(data_dir):
    """1,000 real users of amazon-phones: validation Recall@20 well above a random ranking."""
    from hf_genrec.data import load_rec_dataset

    ds = load_rec_dataset("amazon-phones", data_dir)
    users = sorted({u for u, _ in ds.train_interactions()})[:1000]
    keep = set(users)
    train_pairs = [(u, i) for u, i in ds.train_interactions() if u in keep]
    idx, user_ids, item_ids = index_interactions(train_pairs)
    known = set(item_ids)
    valid = [(u, i) for u, i in ds.valid if u in keep and i in known]
    valid_idx, _, _ = index_interactions(valid, item_ids=item_ids, user_ids=user_ids)
    result = train_lightgcn(idx, len(user_ids), len(item_ids), dim=32, layers=2, epochs=8, lr=0.01,
                            batch_size=2048, seed=0, eval_interactions=valid_idx, eval_every=8)
    recall = result.history[-1]["recall@20"]
    random_recall = 20 / len(item_ids)
    assert recall > 5 * random_recall, (recall, random_recall)


def test_bad_input_is_rejected():
    with pytest.raises(InvalidInputError):
        train_lightgcn([(0, 5)], num_users=1, num_items=3)  # item out of range
    with pytest.raises(InvalidInputError):
        train_lightgcn([], num_users=1, num_items=3)
    with pytest.raises(InvalidInputError):
        train_lightgcn([(0, 1)], num_users=1, num_items=3, dim=0)
    with pytest.raises(InvalidInputError):
        index_interactions([(1, 99)], item_ids=[1, 2, 3])


def test_ranking_excludes_only_what_the_protocol_excludes():
    """ColaRec's protocol removes the training items from the ranking; leave-one-out removes nothing."""
    users = torch.tensor([[1.0, 0.0]])
    items = torch.tensor([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # item 0 scores highest
    held_out = np.array([[0, 0]])
    kept = evaluate_ranking(users, items, np.zeros((0, 2), dtype=np.int64), held_out, ks=(1,))
    removed = evaluate_ranking(users, items, np.array([[0, 0]]), held_out, ks=(1,))
    assert kept["recall@1"] == 1.0 and removed["recall@1"] == 0.0


def test_withheld_edges_leave_the_graph_but_not_the_batch_order():
    """A run that withholds edges draws the batches and negatives of the run that keeps them: withholding nothing
    repeats it exactly, and withholding some stays closer to it than training on the other edges alone, while
    the withheld edges score lower (the run never saw them)."""
    train, held, n_users, n_items = community_graph()
    pairs = np.unique(train, axis=0)
    kwargs = dict(dim=16, layers=2, epochs=10, lr=0.02, batch_size=256, seed=7)
    full = train_lightgcn(pairs, n_users, n_items, **kwargs)
    assert torch.equal(train_lightgcn(pairs, n_users, n_items, withheld=[], **kwargs).item_embeddings, full.item_embeddings)
    dropped = np.zeros(len(pairs), dtype=bool)
    dropped[::7] = True
    withheld = train_lightgcn(pairs, n_users, n_items, withheld=pairs[dropped], **kwargs)
    alone = train_lightgcn(pairs[~dropped], n_users, n_items, **kwargs)

    def distance(result):
        return float((result.item_embeddings - full.item_embeddings).norm() / full.item_embeddings.norm())

    assert distance(withheld) < 0.75 * distance(alone)
    u, i = pairs[dropped, 0], pairs[dropped, 1]

    def edge_scores(result):
        return (result.user_embeddings[u] * result.item_embeddings[i]).sum(-1)

    assert (edge_scores(full) > edge_scores(withheld)).float().mean() > 0.8
    with pytest.raises(InvalidInputError, match=r"withheld pair \(user 0, item \d+\) is not among the training interactions"):
        absent = next(j for j in range(n_items) if not ((pairs[:, 0] == 0) & (pairs[:, 1] == j)).any())
        train_lightgcn(pairs, n_users, n_items, withheld=[(0, absent)], **kwargs)
