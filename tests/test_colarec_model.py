"""ColaRec model and data pipeline: loss ablation, decoding protocol, save/load, no target leakage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hf_genrec.models.colarec.processing_colarec import ColaRecCollator, ColaRecFeatureConfig, ColaRecFeatures, ColaRecProcessor, ColaRecSpecialTokens, tokenize_item_texts
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.models.processing_utils import EvalCollator
from hf_genrec.errors import ConfigError, InvalidInputError
from hf_genrec.models.colarec import COLAREC, ColaRecConfig, ColaRecForGenerativeRecommendation
from hf_genrec.models.registry import register_family
from hf_genrec.item_tokenizers.constrained_kmeans import colarec_semantic_ids
from hf_genrec.models.colarec.family import gid_tree

VOCAB = 60
SPECIAL = ColaRecSpecialTokens(pad_token_id=0, task_token_id=3, item_slot_token_id=4, user_slot_token_id=5, eos_token_id=1)


# ---------------------------------------------------------------------------------------- fixtures
def synthetic_features(n_items=40, n_users=15, seed=0, **config) -> ColaRecFeatures:
    rng = np.random.default_rng(seed)
    item_ids = list(range(101, 101 + n_items))
    table = colarec_semantic_ids(item_ids, rng.normal(size=(n_items, 4)), levels=3, clusters=4, seed=0)
    tokens = [rng.integers(6, VOCAB, size=rng.integers(2, 8)).tolist() for _ in item_ids]
    interactions = []
    for user in range(1, n_users + 1):
        for item in rng.choice(item_ids, size=5, replace=False):
            interactions.append((user, int(item)))
    return ColaRecFeatures(ColaRecProcessor(table, tokens, SPECIAL, ColaRecFeatureConfig(**config)), interactions)


def train_rows(features: ColaRecFeatures) -> list[dict]:
    by_user: dict[int, list[int]] = {}
    for user in features.user_ids:
        by_user[user] = [features.table.item_ids[r] for r in sorted(features.user_items[user])]
    rows = []
    for user, items in by_user.items():
        for target in items[:2]:
            rows.append({"user_id": user, "history": [i for i in items if i != target], "target": target})
    return rows


def tiny_model(features: ColaRecFeatures, **overrides) -> ColaRecForGenerativeRecommendation:
    torch.manual_seed(0)
    tree = None
    if overrides.get("code_embedding_scope") == "node":
        tree, overrides["gid_tree_sizes"] = gid_tree(features.table)
    config = ColaRecConfig(
        vocab_size=VOCAB, num_items=features.num_items, num_users=features.num_users, codebook_sizes=[4, 4, 4],
        d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4, dropout_rate=0.0,
        use_item_position_embeddings=True, **overrides,
    )
    model = ColaRecForGenerativeRecommendation(config)
    if tree is not None:
        model.set_gid_tree(tree)
    return model


@pytest.fixture(scope="module")
def features() -> ColaRecFeatures:
    return synthetic_features()


@pytest.fixture(scope="module")
def batch(features) -> dict:
    collator = ColaRecCollator(features, seed=0)
    rows = train_rows(features)[:8] + [{"item_id": features.table.item_ids[0]}, {"item_id": features.table.item_ids[7]}]
    return collator(rows)


# ---------------------------------------------------------------------------------------- losses
def grads_for(model, batch, **weights) -> dict[str, torch.Tensor | None]:
    for name in ("rec", "index", "bpr", "contrastive"):
        setattr(model.config, f"{name}_loss_weight", weights.get(name, 0.0))
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    assert set(out.loss_components) == {k for k, w in weights.items() if w > 0}
    out.loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}


def nonzero(grad: torch.Tensor | None) -> bool:
    return grad is not None and bool(grad.abs().sum() > 0)


def nonzero_rows(grad: torch.Tensor | None) -> set[int]:
    return set() if grad is None else set(torch.nonzero(grad.abs().sum(1) > 0).flatten().tolist())


def slot_rows(batch, prefixes, kind) -> set[int]:
    rows = set()
    for p in prefixes:
        key = f"{p}_{kind}_slot_ids"
        if key in batch:
            rows |= set(batch[key][batch[key] >= 0].tolist())
    return rows


def test_each_loss_term_reaches_only_its_parameters(features, batch):
    model = tiny_model(features)
    decoder_side = lambda g: [v for n, v in g.items() if n.startswith(("decoder.", "code_embeddings."))]

    rec = grads_for(model, batch, rec=1.0)
    assert all(nonzero(v) for v in decoder_side(rec)[:3]) and nonzero(rec["code_embeddings.0.weight"])
    assert not nonzero(rec["encoder.user_embeddings.weight"]), "the recommendation input holds no user slot"
    assert nonzero_rows(rec["encoder.task_embeddings.weight"]) == {0}
    # only the items of the users' inputs get gradient: never a target that is not in some input
    assert nonzero_rows(rec["encoder.item_embeddings.weight"]) == slot_rows(batch, ["rec"], "item")

    index = grads_for(model, batch, index=1.0)
    assert nonzero(index["code_embeddings.2.weight"]) and nonzero(index["decoder.final_layer_norm.weight"])
    assert nonzero_rows(index["encoder.user_embeddings.weight"]) == slot_rows(batch, ["index", "pos", "neg"], "user")
    assert nonzero_rows(index["encoder.task_embeddings.weight"]) == {1}

    bpr = grads_for(model, batch, bpr=1.0)
    assert not any(nonzero(v) for v in decoder_side(bpr)), "BPR must not train the decoder or codebooks"
    assert nonzero(bpr["encoder.stack.block.0.layer.0.SelfAttention.q.weight"])
    assert nonzero_rows(bpr["encoder.task_embeddings.weight"]) == {0, 1}
    assert nonzero_rows(bpr["encoder.item_embeddings.weight"]) == slot_rows(batch, ["rec", "pos", "neg"], "item")

    contrastive = grads_for(model, batch, contrastive=1.0)
    assert not any(nonzero(v) for v in decoder_side(contrastive))
    assert nonzero_rows(contrastive["encoder.task_embeddings.weight"]) == {1}, "item-side inputs only"
    assert nonzero_rows(contrastive["encoder.item_embeddings.weight"]) == slot_rows(batch, ["pos", "neg", "sib"], "item")

    # the total is the weighted sum of the (unweighted) components
    for name, w in {"rec": 0.08, "index": 0.08, "bpr": 1.0, "contrastive": 0.1}.items():
        setattr(model.config, f"{name}_loss_weight", w)
    out = model(**batch)
    assert set(out.loss_components) == {"rec", "index", "bpr", "contrastive"}
    expected = sum(model.config.loss_weights[k] * v for k, v in out.loss_components.items())
    assert torch.allclose(out.loss, expected)


def test_zero_weight_skips_the_term_and_bad_batches_fail(features, batch):
    model = tiny_model(features, bpr_loss_weight=0.0)
    out = model(**batch)
    assert "bpr" not in out.loss_components and {"rec", "index", "contrastive"} <= set(out.loss_components)
    with pytest.raises(InvalidInputError):
        model(**{**batch, "rec_input_idz": batch["rec_input_ids"]})
    with pytest.raises(InvalidInputError):  # a batch that feeds no weighted term
        only_sib = {k: v for k, v in batch.items() if k.startswith("sib_")}
        model(**only_sib)
    with pytest.raises(ConfigError):
        ColaRecConfig(pooling="max")


def test_initial_generation_loss_is_near_uniform(features, batch):
    """Guards the custom-model init pitfall: a std-1 head would give a loss far above ln(K)."""
    model = tiny_model(features)
    loss = model(**{k: v for k, v in batch.items() if k.startswith("rec_")}).loss_components["rec"]
    assert loss.item() < 2.5 * np.log(4)


# ---------------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("scope", ["level", "node"])
def test_level_decoding_protocol_matches_loss_cache_and_generate(features, batch, scope):
    model = tiny_model(features, code_embedding_scope=scope).eval()
    inputs = {k[4:]: v for k, v in batch.items() if k.startswith("rec_") and k != "rec_labels"}
    labels = batch["rec_labels"]
    with torch.no_grad():
        hidden, mask = model.encode_for_decoding(**inputs, task="rec")
        cache, total = None, torch.zeros(labels.shape[0])
        for level in range(3):
            logp, cache = model.level_logits(level, labels[:, :level], hidden, mask, past_key_values=cache)
            fresh, _ = model.level_logits(level, labels[:, :level], hidden, mask)
            assert logp.shape == (labels.shape[0], 4)
            assert torch.allclose(logp, fresh, atol=1e-5), "cached decoding differs from a fresh pass"
            assert torch.allclose(logp.exp().sum(-1), torch.ones(labels.shape[0]), atol=1e-5)
            total += logp.gather(1, labels[:, level : level + 1]).squeeze(1)
        loss = model(**inputs, task="rec", labels=labels).loss
        assert loss.item() == pytest.approx(-total.sum().item() / labels.numel(), rel=1e-5)

        # generate() over the flat decoder vocabulary ranks exactly like exhaustive level decoding
        first = {k: v[:1] for k, v in inputs.items()}
        generated = model.generate(**first, task="rec", num_beams=6, num_return_sequences=6, max_new_tokens=3,
                                   do_sample=False, length_penalty=0.0, use_cache=scope == "level")
        codes = model.decoder_ids_to_codes(generated).tolist()
        paths = torch.tensor(list(itertools.product(range(4), repeat=3)))  # all 64 IDs, scored in one batch
        h, m = hidden[:1].expand(len(paths), -1, -1), mask[:1].expand(len(paths), -1)
        total = sum(model.level_logits(l, paths[:, :l], h, m)[0].gather(1, paths[:, l : l + 1]).squeeze(1) for l in range(3))
        best = [tuple(paths[i].tolist()) for i in total.argsort(descending=True)[:6]]
        assert [tuple(c) for c in codes] == best


def test_save_load_round_trip_and_auto_classes(features, batch, tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

    register_family(COLAREC)  # importing hf_genrec registered it; registering again is harmless
    model = tiny_model(features, tie_code_heads=False).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "colarec"
    for auto in (AutoModel, AutoModelForSeq2SeqLM):
        loaded = auto.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, ColaRecForGenerativeRecommendation)
        assert loaded.config.tie_code_heads is False and loaded.config.codebook_sizes == [4, 4, 4]
        with torch.no_grad():
            a, b = model(**batch), loaded(**batch)
        for name in a.loss_components:
            assert torch.equal(a.loss_components[name], b.loss_components[name]), name


# ---------------------------------------------------------------------------------------- data
def test_user_inputs_never_contain_the_target(features):
    collator = ColaRecCollator(features, seed=1)
    rows = train_rows(features)
    # even a row that wrongly lists its target in the history must not leak it
    rows[0] = {**rows[0], "history": rows[0]["history"] + [rows[0]["target"]]}
    batch = collator(rows)
    for r, row in enumerate(rows):
        target_row = features.item_row(row["target"])
        slots = batch["rec_item_slot_ids"][r]
        assert target_row not in slots.tolist()
        assert sorted(slots[slots >= 0].tolist()) == sorted(features.item_row(i) for i in row["history"] if i != row["target"])
        assert batch["rec_labels"][r].tolist() == features.labels(target_row)
        assert batch["pos_labels"][r].tolist() == features.labels(target_row)
        # the positive item's user slots never hold the row's own user
        assert features.user_row(row["user_id"]) not in batch["pos_user_slot_ids"][r].tolist()
    assert batch["rec_input_ids"][:, 0].eq(SPECIAL.task_token_id).all()


def test_negatives_are_unseen_and_siblings_share_the_prefix(features):
    collator = ColaRecCollator(features, seed=2)
    rows = train_rows(features) * 5
    batch = collator(rows)
    codes = features.codes
    for r, row in enumerate(rows):
        neg = int(batch["neg_item_slot_ids"][r, 1])
        sib = int(batch["sib_item_slot_ids"][r, 1])
        target = features.item_row(row["target"])
        assert neg not in features.user_items[row["user_id"]], "negative was a training item of the user"
        assert codes[neg, 0] != codes[target, 0]  # 4 first-level clusters: an outside item always exists
        assert batch["neg_labels"][r].tolist() == codes[neg].tolist()
        assert sib != target and codes[sib, 0] == codes[target, 0]
    # fresh samples on every call, same stream for the same seed
    again = collator(rows)
    assert not torch.equal(again["neg_item_slot_ids"], batch["neg_item_slot_ids"])
    replay = ColaRecCollator(features, seed=2)(rows)
    assert torch.equal(replay["neg_item_slot_ids"], batch["neg_item_slot_ids"])


def test_caps_on_items_tokens_and_length():
    features = synthetic_features(max_items_per_user=3, max_tokens_per_item=4, max_length=14, users_per_item=2)
    collator = ColaRecCollator(features, seed=0)
    row = {"user_id": 1, "history": features.table.item_ids[:10], "target": features.table.item_ids[20]}
    batch = collator([row, {"item_id": features.table.item_ids[5]}])
    n = int(batch["rec_attention_mask"][0].sum())
    assert n <= 14
    kept = batch["rec_item_slot_ids"][0][batch["rec_item_slot_ids"][0] >= 0].tolist()
    assert 1 <= len(kept) <= 3
    assert kept == [features.item_row(i) for i in row["history"]][-len(kept):], "the most recent items are kept"
    assert int(batch["index_attention_mask"][0].sum()) <= 1 + 1 + 4 + 2 + 1
    assert (batch["index_user_slot_ids"][0] >= 0).sum() <= 2


def test_real_phones_pipeline_end_to_end(data_dir):
    """Real amazon-phones rows and texts: tokenised content, a training step, an eval batch."""
    from hf_genrec.data import load_rec_dataset

    ds = load_rec_dataset("amazon-phones", data_dir)
    users = set(sorted({u for u, _ in ds.train_interactions()})[:150])
    pairs = [(u, i) for u, i in ds.train_interactions() if u in users]
    item_ids = sorted({i for _, i in pairs})
    table = colarec_semantic_ids(item_ids, np.random.default_rng(0).normal(size=(len(item_ids), 8)), clusters=16)
    texts = [ds.catalogue.text(i) for i in item_ids]
    tokenizer = GenRecTokenizer.from_semantic_id_table(
        table, num_user_buckets=0, text_corpus=texts, text_vocab_size=400, task_tokens=("<task>", "<item>", "<user>")
    )
    processor = ColaRecProcessor.from_catalogue(tokenizer, texts, ColaRecFeatureConfig(max_length=128))
    special = processor.special
    features = ColaRecFeatures(processor, pairs)
    from hf_genrec.data.protocols import colarec_splits

    splits = colarec_splits([r for r in ds.train if r[0] in users], [r for r in ds.valid if r[0] in users],
                            [r for r in ds.test if r[0] in users], max_history=20)
    train = features.train_dataset(splits["train"])
    assert len(train) > 0 and all(r["target"] not in r["history"] for r in train)
    collator = ColaRecCollator(features)
    batch = collator([train[i] for i in range(8)])
    assert batch["rec_input_ids"].shape[1] <= 128
    config = ColaRecConfig(vocab_size=len(tokenizer), num_items=features.num_items,
                           num_users=features.num_users, codebook_sizes=[16, 16, 16], d_model=32, d_kv=8, d_ff=64,
                           num_layers=1, num_heads=4, pad_token_id=special.pad_token_id)
    model = ColaRecForGenerativeRecommendation(config)
    out = model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and set(out.loss_components) == {"rec", "index", "bpr", "contrastive"}
    valid = splits["validation"]
    eval_batch = EvalCollator(processor)([valid[i] for i in range(4)])
    hidden, mask = model.encode_for_decoding(eval_batch["input_ids"], eval_batch["attention_mask"],
                                             item_slot_ids=eval_batch["item_slot_ids"],
                                             item_position_ids=eval_batch["item_position_ids"])
    logp, _ = model.level_logits(0, torch.zeros(4, 0, dtype=torch.long), hidden, mask)
    assert logp.shape == (4, 16)
    assert all(set(t).isdisjoint(h) for t, h in zip(eval_batch["targets"], [valid[i]["history"] for i in range(4)]))


# ---------------------------------------------------------------------------------------- node-scoped codes
def test_node_scoped_last_level_scores_are_item_rows(features):
    """Under node scope the last step is an item softmax among siblings: one item's row moves only its own score."""
    model = tiny_model(features, code_embedding_scope="node").eval()
    codes = torch.as_tensor(features.table.codes)
    assert torch.equal(model.prefix_nodes(codes)[:, -1], torch.arange(features.num_items)), "leaf node = item row"
    states = torch.randn(features.num_items, 16)
    parents = model.prefix_nodes(codes[:, :-1])[:, -1]
    before = model.level_scores(2, states, parents)
    item = 7
    with torch.no_grad():
        model.code_embeddings[2].weight[item] += 1.0
    after = model.level_scores(2, states, parents)
    changed = (before != after).nonzero().tolist()
    siblings = (parents == parents[item]).nonzero().flatten().tolist()
    assert {tuple(c) for c in changed} == {(r, int(codes[item, 2])) for r in siblings}
    # codes that are no child of the row's node never win
    children = model.gid_children(2)[parents]
    assert (after[children < 0] < -1e30).all() and (after[children >= 0] > -1e30).all()


def test_node_scoped_model_saves_its_tree_and_rejects_a_wrong_one(features, batch, tmp_path):
    from transformers import AutoModel

    model = tiny_model(features, code_embedding_scope="node").eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    for level in range(3):
        assert torch.equal(loaded.gid_children(level), model.gid_children(level))
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    assert torch.equal(a.loss_components["rec"], b.loss_components["rec"])
    with pytest.raises(InvalidInputError, match="level 1"):
        model.set_gid_tree([model.gid_children(0), model.gid_children(1)[:1], model.gid_children(2)])
    with pytest.raises(InvalidInputError, match="use_cache=False"):
        model.generate(**{k[4:]: v[:1] for k, v in batch.items() if k.startswith("rec_") and k != "rec_labels"},
                       task="rec", num_beams=2, max_new_tokens=3, use_cache=True)
    with pytest.raises(ConfigError, match="gid_tree_sizes"):
        ColaRecConfig(num_items=40, code_embedding_scope="node", gid_tree_sizes=[4, 40])
    with pytest.raises(ConfigError, match="code_embedding_scope"):
        ColaRecConfig(code_embedding_scope="tree")


def test_item_logsumexp_levels_factorise_one_item_softmax(features, tmp_path):
    """node_scoring item_logsumexp: the level log-probs of a GID sum to a softmax over all items of one state,
    so a wide enough beam ranks exactly as that softmax; a saved model reloads its node members."""
    from transformers import AutoModel

    model = tiny_model(features, code_embedding_scope="node", node_scoring="item_logsumexp").eval()
    codes = torch.as_tensor(features.table.codes)
    nodes = model.prefix_nodes(codes)
    members = model.node_members(0)
    assert sorted(members[members >= 0].tolist()) == list(range(features.num_items))
    for item in (0, 13, 39):
        assert item in members[nodes[item, 1 - 1]].tolist() and item in model.node_members(1)[nodes[item, 1]].tolist()
    state = torch.randn(1, 16)
    total = torch.zeros(features.num_items)
    for level in range(3):
        parents = model._parents(level, nodes) if level else torch.zeros(features.num_items, dtype=torch.long)
        logp = torch.log_softmax(model.level_scores(level, state.expand(features.num_items, -1), parents), dim=-1)
        total += logp.gather(1, codes[:, level : level + 1]).squeeze(1)
    items = model.code_embeddings[2].weight
    expected = torch.log_softmax((state * 16**-0.5) @ items.T, dim=-1).squeeze(0)
    assert torch.allclose(total, expected, atol=1e-5)
    # an item row moves the level-0 score of its own branch only
    before = model.level_scores(0, state, torch.zeros(1, dtype=torch.long))
    with torch.no_grad():
        model.code_embeddings[2].weight[13] += 1.0
    after = model.level_scores(0, state, torch.zeros(1, dtype=torch.long))
    assert (before != after).nonzero()[:, 1].tolist() == [int(codes[13, 0])]
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.node_scoring == "item_logsumexp"
    assert torch.equal(loaded.level_scores(0, state, torch.zeros(1, dtype=torch.long)), after)
    with pytest.raises(ConfigError, match="node_scoring"):
        ColaRecConfig(node_scoring="item_logsumexp")
    with pytest.raises(ConfigError, match="node_scoring"):
        ColaRecConfig(num_items=40, code_embedding_scope="node", gid_tree_sizes=[4, 16, 40], node_scoring="sum")


def test_collaborative_init_keeps_dot_products_and_seeds_nodes_with_means(features):
    from hf_genrec.models.colarec.collaborative_init import init_from_collaborative_vectors, projection_to

    rng = torch.Generator().manual_seed(0)
    items, users = torch.randn(features.num_items, 6, generator=rng), torch.randn(features.num_users, 6, generator=rng)
    # widening keeps every dot product; narrowing keeps the leading principal directions
    wide = projection_to(16, items, seed=0)
    assert torch.allclose((items @ wide) @ (users @ wide).T, items @ users.T, atol=1e-4)
    assert projection_to(3, items, seed=0).shape == (6, 3)
    model = tiny_model(features, code_embedding_scope="node")
    init_from_collaborative_vectors(model, items, users, item_codes=torch.as_tensor(features.table.codes), seed=0)
    item_rows, user_rows = model.encoder.item_embeddings.weight, model.encoder.user_embeddings.weight
    scale = item_rows.norm() / (items @ wide).norm()
    assert item_rows.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=1e-4)  # the model's embedding scale
    assert torch.allclose(item_rows @ user_rows.T, scale**2 * (items @ users.T), atol=1e-3)
    assert torch.allclose(model.code_embeddings[2].weight, item_rows)  # leaves are the items
    first = torch.as_tensor(features.table.codes)[:, 0]
    means = torch.stack([item_rows[first == c].mean(0) for c in range(4)])
    level0 = model.code_embeddings[0].weight
    assert torch.allclose(level0 / level0.norm(dim=1, keepdim=True), means / means.norm(dim=1, keepdim=True), atol=1e-5)
    with pytest.raises(Exception, match="40 items"):
        init_from_collaborative_vectors(model, items[:5], users)


def test_user_slot_puts_the_users_own_row_after_the_task_token(features, tmp_path):
    from hf_genrec.models.colarec.processing_colarec import POS_USER_SLOT

    base = features.processor
    with pytest.raises(InvalidInputError, match="user_ids"):
        ColaRecProcessor(base.table, base.item_tokens, SPECIAL, ColaRecFeatureConfig(user_slot=True))
    processor = ColaRecProcessor(base.table, base.item_tokens, SPECIAL, ColaRecFeatureConfig(user_slot=True),
                                 user_ids=features.user_ids)
    with_slot = ColaRecFeatures(processor, [(u, features.table.item_ids[r]) for u in features.user_ids
                                            for r in sorted(features.user_items[u])])
    rows = train_rows(with_slot)[:4]
    batch = ColaRecCollator(with_slot, seed=0)(rows)
    for r, row in enumerate(rows):
        assert batch["rec_input_ids"][r, 1] == SPECIAL.user_slot_token_id
        assert batch["rec_item_position_ids"][r, 1] == POS_USER_SLOT
        slots = batch["rec_user_slot_ids"][r]
        assert slots[1] == with_slot.user_row(row["user_id"]) and (slots >= 0).sum() == 1
    # evaluation inputs: the same slot for a training user, none for an unknown one or no user id
    history = [features.table.item_ids[0], features.table.item_ids[1]]
    known = processor([history], [features.user_ids[3]])
    assert known["user_slot_ids"][0, 1] == 3 and known["input_ids"][0, 1] == SPECIAL.user_slot_token_id
    unknown = processor([history], [10_000])
    assert "user_slot_ids" not in unknown and unknown["input_ids"][0, 1] == SPECIAL.item_slot_token_id
    # the model reads the slot: a user's row changes only that user's encoding
    model = tiny_model(features).eval()
    with torch.no_grad():
        before = model.encode(**{k: v for k, v in known.items()})[0]
        model.encoder.user_embeddings.weight[3] += 1.0
        after = model.encode(**{k: v for k, v in known.items()})[0]
        assert not torch.allclose(before, after)
        assert torch.equal(model.encode(**unknown)[0], model.encode(**unknown)[0])


def test_user_slot_processor_round_trip(tmp_path, data_dir):
    from hf_genrec.data import load_rec_dataset

    ds = load_rec_dataset("amazon-phones", data_dir)
    item_ids = ds.catalogue.item_ids[:60]
    table = colarec_semantic_ids(item_ids, np.random.default_rng(0).normal(size=(60, 4)), clusters=4)
    texts = [ds.catalogue.text(i) for i in item_ids]
    tokenizer = GenRecTokenizer.from_semantic_id_table(
        table, num_user_buckets=0, text_corpus=texts, text_vocab_size=300, task_tokens=("<task>", "<item>", "<user>")
    )
    processor = ColaRecProcessor.from_catalogue(tokenizer, texts, ColaRecFeatureConfig(max_length=96, user_slot=True),
                                                user_ids=[5, 9, 12])
    processor.save_pretrained(tmp_path)
    loaded = ColaRecProcessor.from_pretrained(tmp_path)
    assert loaded.user_ids == [5, 9, 12] and loaded.config.user_slot
    a, b = processor([item_ids[:3]], [9]), loaded([item_ids[:3]], [9])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a processor config that asks for user slots while its file holds no user ids
    import json

    from hf_genrec.errors import DataFormatError

    plain = ColaRecProcessor.from_catalogue(tokenizer, texts, ColaRecFeatureConfig(max_length=96))
    plain.save_pretrained(tmp_path / "plain")
    config_path = tmp_path / "plain" / "processor_config.json"
    config = json.loads(config_path.read_text())
    config["feature_config"]["user_slot"] = True
    config_path.write_text(json.dumps(config))
    with pytest.raises(DataFormatError, match="no user_ids were saved"):
        ColaRecProcessor.from_pretrained(tmp_path / "plain")


def test_rows_of_one_item_table_pass_it_on_and_mixed_tables_are_refused(features):
    rows = train_rows(features)[:4]
    collator = ColaRecCollator(features, seed=0)
    assert "item_table" not in collator(rows)
    batch = collator([{**row, "item_table": 2} for row in rows])
    assert int(batch["item_table"]) == 2 and batch["rec_labels"].shape[0] == 4
    with pytest.raises(InvalidInputError, match=r"a training batch mixes item tables \[1, 2\]"):
        collator([{**row, "item_table": 1 + n % 2} for n, row in enumerate(rows)])
    model = tiny_model(features)
    with pytest.raises(InvalidInputError, match="the model has no item tables"):
        model(**batch)
