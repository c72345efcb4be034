"""ColaRec end to end on a real amazon-phones slice: LightGCN -> GIDs -> multi-task training -> evaluation."""

from __future__ import annotations

import json

import pytest
import yaml

from genrec_fixtures import TINY_COLAREC, write_phones_slice
from hf_genrec.semantic_ids.id_table import SemanticIdTable
from hf_genrec.inference.saved_models import evaluate_saved_model, load_saved_model
from hf_genrec.training.pipeline import train_from_recipe
from hf_genrec.training.recipe_loading import parse_recipe


def train_tiny(tmp_path, data_dir, **overrides):
    write_phones_slice(data_dir, tmp_path / "data", users=120)
    recipe = {
        **TINY_COLAREC,
        "dataset": "phones-slice",
        "data_dir": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "out"),
        "max_steps": 6,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_steps": 3,
        "load_best_model_at_end": True,
        "metric_for_best_model": "ndcg@20",
        **overrides,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return train_from_recipe(parse_recipe(tmp_path / "recipe.yaml"))


def test_colarec_trains_logs_each_loss_and_evaluates(tmp_path, data_dir):
    result = train_tiny(tmp_path, data_dir, plot_loss_curves=True)
    out = tmp_path / "out"
    for split in ("validation", "test"):
        assert result[f"{split}_invalid_rate"] == 0.0
        assert 0 <= result[f"{split}_ndcg@20"] <= 1
    # GIDs from LightGCN, unique by construction, no disambiguation level
    table = SemanticIdTable.load(out / "item_tokenizer")
    assert table.method == "colarec-kmeans" and table.num_levels == 3 and table.stats()["unique_ids"] == table.num_items
    lightgcn = json.loads((out / "item_tokenizer" / "lightgcn_results.json").read_text())
    assert {"validation_ndcg@20", "test_ndcg@20", "history"} <= set(lightgcn)
    # the per-component losses were logged, and the saved model evaluates to the same figures
    state = json.loads(sorted(out.glob("checkpoint-*"))[-1].joinpath("trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert {"loss_rec", "loss_index", "loss_bpr", "loss_contrastive"} <= logged
    saved = load_saved_model(out)
    assert type(saved.model).__name__ == "ColaRecForGenerativeRecommendation"
    assert type(saved.processor).__name__ == "ColaRecProcessor"
    assert type(saved.processor.tokenizer).__name__ == "GenRecTokenizer"
    again = evaluate_saved_model(out, split="test", scratch_dir=str(tmp_path))
    assert again["ndcg@20"] == pytest.approx(result["test_ndcg@20"])
    assert "colarec" in again["protocol"]


def test_zero_weight_removes_a_loss_from_the_logs(tmp_path, data_dir):
    train_tiny(tmp_path, data_dir, contrastive_loss_weight=0.0, bpr_loss_weight=0.0, test_at_end=False)
    # a run that leaves test unread does not read it through its LightGCN either
    lightgcn = json.loads((tmp_path / "out" / "item_tokenizer" / "lightgcn_results.json").read_text())
    assert "validation_ndcg@20" in lightgcn and not [k for k in lightgcn if k.startswith("test_")]
    state = json.loads(sorted((tmp_path / "out").glob("checkpoint-*"))[-1].joinpath("trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert "loss_rec" in logged and "loss_index" in logged
    assert "loss_bpr" not in logged and "loss_contrastive" not in logged


def test_shipped_colarec_recipes_parse():
    for name, overrides in (("colarec-phones-cpu.yaml", []), ("colarec-phones.yaml", ["bf16=false"]), ("colarec-beauty.yaml", ["bf16=false"])):
        parsed = parse_recipe(f"training_args/{name}", overrides)
        assert parsed.recipe.model_family == "colarec" and parsed.recipe.semantic_id_method == "colarec-kmeans"


def test_node_codes_lightgcn_start_and_user_slot_train_and_reload(tmp_path, data_dir):
    """The recipe switches reach the model: a node-scoped tree, LightGCN-seeded rows, a user slot; the saved folder evaluates alike."""
    import torch

    from hf_genrec.item_tokenizers.lightgcn import LightGCNResult

    overrides = {"code_embedding_scope": "node", "init_from_lightgcn": True, "user_slot": True, "lightgcn_dim": 32}
    result = train_tiny(tmp_path, data_dir, max_steps=2, eval_steps=2, save_steps=2, learning_rate=1e-9, **overrides)
    out = tmp_path / "out"
    saved = load_saved_model(out)
    model, processor = saved.model, saved.processor
    assert model.config.code_embedding_scope == "node" and processor.config.user_slot
    # with a vanishing learning rate the atom-item rows are still LightGCN's item vectors (same width: up to one scale)
    items = LightGCNResult.load(out / "item_tokenizer" / "lightgcn.safetensors").item_embeddings
    rows = model.encoder.item_embeddings.weight.detach().float()
    gram, expected = rows @ rows.T, items @ items.T
    assert torch.allclose(gram / gram.abs().max(), expected / expected.abs().max(), atol=2e-2)
    again = evaluate_saved_model(out, split="test", scratch_dir=str(tmp_path))
    assert again["ndcg@20"] == pytest.approx(result["test_ndcg@20"])


def test_lightgcn_start_needs_the_lightgcn_file(tmp_path, data_dir):
    from hf_genrec.errors import ConfigError

    train_tiny(tmp_path / "first", data_dir, max_steps=1, eval_strategy="no", save_strategy="no",
               load_best_model_at_end=False, test_at_end=False)
    table_only = tmp_path / "table-only"
    table_only.mkdir()
    (table_only / "semantic_ids.json").write_bytes((tmp_path / "first" / "out" / "item_tokenizer" / "semantic_ids.json").read_bytes())
    with pytest.raises(ConfigError, match="lightgcn.safetensors"):
        train_tiny(tmp_path / "second", data_dir, semantic_ids=str(table_only), init_from_lightgcn=True, max_steps=1)


def test_bad_colarec_switches_are_refused():
    from hf_genrec.errors import ConfigError

    with pytest.raises(ConfigError, match="code_embedding_scope must be one of"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["code_embedding_scope=tree"])
    with pytest.raises(ConfigError, match="node_scoring must be one of"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["node_scoring=sum"])
    with pytest.raises(ConfigError, match="node_scoring 'item_logsumexp' needs code_embedding_scope 'node'"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["code_embedding_scope=level", "node_scoring=item_logsumexp"])


def test_item_logsumexp_recipe_trains_and_its_tree_ranks_as_the_flat_softmax(tmp_path, data_dir, capsys):
    """node_scoring item_logsumexp end to end; bench/colarec_tree_scoring.py on the run's LightGCN vectors:
    with a beam that keeps every path, the log-sum-exp tree ranks exactly as the flat dot product."""
    import importlib.util
    from pathlib import Path

    result = train_tiny(tmp_path, data_dir, code_embedding_scope="node", node_scoring="item_logsumexp",
                        init_from_lightgcn=True, max_steps=3, eval_steps=3)
    assert result["test_invalid_rate"] == 0.0 and 0 <= result["test_ndcg@20"] <= 1
    assert load_saved_model(tmp_path / "out").model.config.node_scoring == "item_logsumexp"
    spec = importlib.util.spec_from_file_location("tree_bench", Path(__file__).resolve().parents[1] / "bench" / "colarec_tree_scoring.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--item-tokenizer", str(tmp_path / "out" / "item_tokenizer"), "--dataset", "phones-slice",
                "--data-dir", str(tmp_path / "data"), "--num-beams", "100000", "--max-users", "0", "--temperatures", "1"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    flat = figures["flat, mean of the user's item vectors"]
    exact = figures["tree, node_scoring item_logsumexp"]
    assert figures["users"] > 50 and flat["ndcg@20"] > 0
    assert exact["ndcg@20"] == pytest.approx(flat["ndcg@20"]) and exact["recall@20"] == pytest.approx(flat["recall@20"])


def test_held_out_targets_keep_their_edges_out_of_the_lightgcn_start(tmp_path, data_dir, monkeypatch):
    """rec_targets held_out: up to held_out_per_user training items per user, never more than held_out_max_share
    of the user's distinct items, are drawn (deterministically), the LightGCN the model starts from never sees
    those edges, and they are the only recommendation rows."""
    from datasets import Dataset

    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_tokenizers import colarec_gids
    from hf_genrec.models.colarec import collaborative_holdout as holdout

    write_phones_slice(data_dir, tmp_path / "data", users=120)
    dataset = load_rec_dataset("phones-slice", tmp_path / "data")
    sequences = dataset.train_sequences()
    held = holdout.held_out_training_items(sequences, seed=3, per_user=2)
    assert held == holdout.held_out_training_items(sequences, seed=3, per_user=2)
    assert held != holdout.held_out_training_items(sequences, seed=4, per_user=2)
    assert set(held) == {u for u, items in sequences.items() if len(set(items)) >= 2}
    for user, items in held.items():
        distinct = set(sequences[user])
        assert items <= distinct and len(items) == min(2, len(distinct) // 2)
    assert {len(items) for items in held.values()} == {1, 2}  # the slice has short and long histories
    one = holdout.held_out_training_items(sequences, seed=3)
    assert set(one) == set(held) and all(len(items) == 1 for items in one.values())
    quarter = holdout.held_out_training_items(sequences, seed=3, max_share=0.25)  # none of 3 items, one of 4-7
    assert set(quarter) == {u for u, items in sequences.items() if len(set(items)) >= 4} != set(one)
    assert all(len(items) == 1 for items in quarter.values())
    capped = holdout.held_out_training_items(sequences, seed=3, per_user=2, max_share=0.25)  # two of 8 or more
    assert {u: len(items) for u, items in capped.items()} == {u: min(2, len(set(s)) // 4) for u, s in sequences.items()
                                                             if len(set(s)) >= 4}
    assert {len(items) for items in capped.values()} == {1, 2}

    seen = {}
    real = colarec_gids.train_lightgcn

    def spy(pairs, *args, **kwargs):
        seen["pairs"] = {tuple(p) for p in pairs.tolist()}
        seen["excluded"] = {tuple(p) for p in kwargs["eval_excluded"].tolist()}
        return real(pairs, *args, **kwargs)

    monkeypatch.setattr(colarec_gids, "train_lightgcn", spy)
    items = dataset.catalogue.item_ids
    users = sorted(sequences)
    result = holdout.held_out_lightgcn(dataset, held, items, dim=8, epochs=1, seed=0)
    assert result.user_embeddings.shape[0] == len(users) and result.item_embeddings.shape[0] == len(items)
    user_row, item_row = {u: r for r, u in enumerate(users)}, {i: r for r, i in enumerate(items)}
    everything = {(user_row[u], item_row[i]) for u, i in dataset.train_interactions()}
    held_pairs = {(user_row[u], item_row[i]) for u, items in held.items() for i in items}
    assert seen["pairs"] == everything - held_pairs and held_pairs <= everything
    assert seen["excluded"] == everything  # its epoch is chosen on validation with every training item excluded, held-out ones too

    rows = Dataset.from_dict({"user_id": [u for u in users for _ in sequences[u]],
                              "history": [[] for u in users for _ in sequences[u]],
                              "target": [i for u in users for i in sequences[u]]})
    kept = holdout.held_out_rows(rows, held)
    assert sorted(zip(kept["user_id"], kept["target"])) == sorted((u, i) for u, items in held.items() for i in items)


def test_held_out_recipe_trains_with_frozen_item_rows_at_the_held_out_start(tmp_path, data_dir):
    """The recipe switches end to end: the frozen atom-item, item and user rows stay the held-out LightGCN's vectors
    (up to the init's scale) through training at a large learning rate, and differ from the full LightGCN's."""
    import torch

    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_tokenizers.lightgcn import LightGCNResult
    from hf_genrec.models.colarec.collaborative_holdout import held_out_lightgcn, held_out_training_items

    overrides = {"code_embedding_scope": "node", "node_scoring": "item_logsumexp", "init_from_lightgcn": True,
                 "rec_targets": "held_out", "held_out_per_user": 2, "freeze_item_embeddings": True, "lightgcn_dim": 32,
                 "user_slot": True, "freeze_user_embeddings": True, "seed": 5}
    result = train_tiny(tmp_path, data_dir, max_steps=3, eval_steps=3, learning_rate=0.05, **overrides)
    assert result["test_invalid_rate"] == 0.0
    model = load_saved_model(tmp_path / "out").model
    dataset = load_rec_dataset("phones-slice", tmp_path / "data")
    held = held_out_training_items(dataset.train_sequences(), seed=5, per_user=2)
    table = SemanticIdTable.load(tmp_path / "out" / "item_tokenizer")
    start = held_out_lightgcn(dataset, held, list(table.item_ids), dim=32, epochs=2, seed=5)
    full = LightGCNResult.load(tmp_path / "out" / "item_tokenizer" / "lightgcn.safetensors")

    def gram(x):
        g = x.detach().float() @ x.detach().float().T
        return g / g.abs().max()

    for rows, kind in ((model.encoder.item_embeddings.weight, "item_embeddings"),
                       (model.code_embeddings[-1].weight, "item_embeddings"),
                       (model.encoder.user_embeddings.weight, "user_embeddings")):
        assert torch.allclose(gram(rows), gram(getattr(start, kind)), atol=1e-4)
        assert not torch.allclose(gram(rows), gram(getattr(full, kind)), atol=1e-2)


def test_held_out_switches_need_the_lightgcn_start():
    from hf_genrec.errors import ConfigError

    with pytest.raises(ConfigError, match="rec_targets must be one of"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["rec_targets=some"])
    for switch in ("rec_targets=held_out", "freeze_item_embeddings=true", "freeze_user_embeddings=true"):
        with pytest.raises(ConfigError, match="needs init_from_lightgcn: true"):
            parse_recipe("training_args/colarec-phones-cpu.yaml", [switch, "init_from_lightgcn=false"])
    with pytest.raises(ConfigError, match="held_out_per_user 2 needs rec_targets: held_out"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["rec_targets=all", "held_out_per_user=2"])
    with pytest.raises(ConfigError, match="held_out_per_user"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["held_out_per_user=0"])
    with pytest.raises(ConfigError, match="held_out_max_share 0.25 needs rec_targets: held_out"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["rec_targets=all"])
    with pytest.raises(ConfigError, match=r"held_out_max_share must be in \(0, 1\), got 1.0"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["held_out_max_share=1.0"])
    with pytest.raises(ConfigError, match="cross_fit_folds must be 0 \\(off\\) or at least 2, got 1"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["cross_fit_folds=1"])
    with pytest.raises(ConfigError, match="cross_fit_folds needs rec_targets: held_out and freeze_item_embeddings"):
        parse_recipe("training_args/colarec-phones-cpu.yaml", ["cross_fit_folds=2", "freeze_item_embeddings=false"])


def test_training_pair_leak_bench_runs_on_a_trained_slice(tmp_path, data_dir, capsys):
    """bench/colarec_training_pair_leak.py on a run's LightGCN: both pair kinds ranked for the same users."""
    import importlib.util
    from pathlib import Path

    train_tiny(tmp_path, data_dir, max_steps=1, eval_strategy="no", save_strategy="no",
               load_best_model_at_end=False, test_at_end=False, lightgcn_epochs=10)
    spec = importlib.util.spec_from_file_location("leak_bench", Path(__file__).resolve().parents[1] / "bench" / "colarec_training_pair_leak.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--item-tokenizer", str(tmp_path / "out" / "item_tokenizer"), "--dataset", "phones-slice",
                "--data-dir", str(tmp_path / "data"), "--max-users", "0"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seen, unseen = figures["a training item (an edge LightGCN trained on)"], figures["the validation items (edges it never saw)"]
    assert figures["users"] > 30
    for side in (seen, unseen):
        assert set(side) == {"LightGCN user vector", "mean of the other items"}
        assert all(0 <= m["ndcg@20"] <= 1 for m in side.values())
    # LightGCN's user vectors were fitted to the training edges: a training item ranks above unseen ones
    assert seen["LightGCN user vector"]["ndcg@20"] > unseen["LightGCN user vector"]["ndcg@20"]


def test_cross_fitted_recipe_trains_one_table_a_batch_and_ranks_with_every_edge(tmp_path, data_dir, monkeypatch):
    """cross_fit_folds: the model trains against the table that misses each row's target edge and keeps (and
    saves) the GIDs' own LightGCN, the one of every training edge, to rank with."""
    import torch

    from hf_genrec.data import load_rec_dataset
    from hf_genrec.item_tokenizers.lightgcn import LightGCNResult
    from hf_genrec.models.colarec.collaborative_holdout import cross_fitted_tables, held_out_lightgcn, held_out_training_items
    from hf_genrec.models.colarec.modeling_colarec import ColaRecForGenerativeRecommendation

    used = []
    switch = ColaRecForGenerativeRecommendation._use_item_table
    monkeypatch.setattr(ColaRecForGenerativeRecommendation, "_use_item_table",
                        lambda self, index: (used.append((self.training, index)), switch(self, index))[1])

    overrides = {"code_embedding_scope": "node", "node_scoring": "item_logsumexp", "init_from_lightgcn": True,
                 "rec_targets": "held_out", "freeze_item_embeddings": True, "lightgcn_dim": 32, "lightgcn_epochs": 4,
                 "seed": 5, "cross_fit_folds": 2}
    result = train_tiny(tmp_path, data_dir, max_steps=4, eval_steps=2, save_steps=2, learning_rate=0.05, **overrides)
    assert result["test_invalid_rate"] == 0.0
    assert used[0] == (True, 0)  # set_item_tables starts the model on table 0
    steps = [index for training, index in used[1:] if training]
    assert len(steps) == 4 and set(steps) <= {1, 2}  # each training step on one fold's table
    assert {index for training, index in used[1:] if not training} == {0}  # evaluation ranks with every edge
    model = load_saved_model(tmp_path / "out").model
    dataset = load_rec_dataset("phones-slice", tmp_path / "data")
    held = held_out_training_items(dataset.train_sequences(), seed=5)
    items = list(SemanticIdTable.load(tmp_path / "out" / "item_tokenizer").item_ids)
    full = LightGCNResult.load(tmp_path / "out" / "item_tokenizer" / "lightgcn.safetensors")
    tables = cross_fitted_tables(dataset, held, full, items, folds=2, dim=32, epochs=4, seed=5)
    assert sorted(set(tables.fold_of_user.values())) == [1, 2] and set(tables.fold_of_user) == set(held)
    assert torch.equal(tables.item_tables[0], full.item_embeddings)
    start = held_out_lightgcn(dataset, held, items, dim=32, epochs=4, seed=5)

    def gram(x):
        g = x.detach().float() @ x.detach().float().T
        return g / g.abs().max()

    for rows in (model.encoder.item_embeddings.weight, model.code_embeddings[-1].weight):
        assert torch.allclose(gram(rows), gram(tables.item_tables[0]), atol=1e-4)
        for other in (tables.item_tables[1], tables.item_tables[2], start.item_embeddings):
            assert not torch.allclose(gram(rows), gram(other), atol=1e-3)


def test_item_tables_serve_training_batches_and_eval_and_checkpoints_keep_table_zero():
    import torch

    from hf_genrec.errors import InvalidInputError
    from hf_genrec.models.colarec.configuration_colarec import ColaRecConfig
    from hf_genrec.models.colarec.modeling_colarec import ColaRecForGenerativeRecommendation
    from hf_genrec.training.trainer import OneTableBatchSampler

    config = ColaRecConfig(vocab_size=40, num_items=6, num_users=3, codebook_sizes=[2, 3], d_model=8, d_ff=16, d_kv=4,
                           num_heads=2, num_layers=1, num_decoder_layers=1)
    model = ColaRecForGenerativeRecommendation(config)
    tables = torch.randn(3, 6, 8)
    with pytest.raises(InvalidInputError, match="freeze_item_embeddings"):
        model.set_item_tables(tables)
    model.freeze_item_embeddings()
    with pytest.raises(InvalidInputError, match="expected"):
        model.set_item_tables(torch.randn(3, 5, 8))
    model.set_item_tables(tables)
    assert torch.equal(model.encoder.item_embeddings.weight, tables[0])
    model.train()
    batch = {"rec_input_ids": torch.tensor([[3, 4, 5]]), "rec_item_slot_ids": torch.tensor([[-1, 2, -1]]),
             "rec_labels": torch.tensor([[1, 2]]), "item_table": torch.tensor(2)}
    assert torch.isfinite(model(**batch).loss)
    assert torch.equal(model.encoder.item_embeddings.weight, tables[2])
    assert torch.equal(model.state_dict()["encoder.item_embeddings.weight"], tables[0])  # checkpoints rank with table 0
    assert torch.equal(model.encoder.item_embeddings.weight, tables[2])
    model.eval()
    assert torch.equal(model.encoder.item_embeddings.weight, tables[0])
    assert "item_tables" not in model.state_dict()

    sampler = OneTableBatchSampler([1, 1, 1, 2, 2, 1, 2], batch_size=2, seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 8 and first != second
    for order in (first, second):
        assert set(order) == set(range(7))
        assert all(len({[1, 1, 1, 2, 2, 1, 2][r] for r in order[b:b + 2]}) == 1 for b in range(0, 8, 2))
