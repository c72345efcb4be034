"""Checkpoints carry their code: they load with trust_remote_code=True in a Python that lacks hf_genrec.

Everything is saved once; one subprocess (``python -S`` with only site-packages on its path, so the
editable install's .pth is never read) loads every checkpoint through the Auto classes and writes its
outputs to JSON, which are compared with the in-package models' outputs.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_genrec.errors import ConfigError
from hf_genrec.models.colarec import ColaRecConfig, ColaRecForGenerativeRecommendation
from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
from hf_genrec.item_tokenizers.rqvae import RQVAETokenizerConfig, RQVAETokenizerModel
from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation
from hf_genrec.remote_code import code_closure, flat_source
from hf_genrec.semantic_ids.id_table import SemanticIdTable

# Runs where hf_genrec cannot be imported; prints one JSON object.
REMOTE_SCRIPT = r"""
import importlib.util, json, sys
import torch
assert importlib.util.find_spec("hf_genrec") is None, "hf_genrec must not be importable here"
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

tiger_dir, rqvae_dir, colarec_dir, resave_dir = sys.argv[1:5]
inputs = json.loads(open(sys.argv[5]).read())
out = {}

tok = AutoTokenizer.from_pretrained(tiger_dir, trust_remote_code=True)
model = AutoModelForSeq2SeqLM.from_pretrained(tiger_dir, trust_remote_code=True).eval()
out["tiger_classes"] = [type(tok).__name__, type(model).__name__, type(model).__module__]
out["history_ids"] = [tok.encode_history(h, u) for h, u in zip(inputs["histories"], inputs["users"])]
batch = tok.batch_encode_histories(inputs["histories"], user_ids=inputs["users"])
decoder_input_ids = torch.tensor(inputs["decoder_input_ids"])
with torch.no_grad():
    out["tiger_logits"] = model(**batch, decoder_input_ids=decoder_input_ids).logits.tolist()
    generated = model.generate(**batch, num_beams=4, num_return_sequences=4, do_sample=False)
out["generated"] = generated.tolist()
out["decoded"] = tok.decode_items(inputs["item_codes"])
out["automodel"] = type(AutoModel.from_pretrained(tiger_dir, trust_remote_code=True)).__name__

# a checkpoint saved from remote code carries its code again
model.save_pretrained(resave_dir)
tok.save_pretrained(resave_dir)

rqvae = AutoModel.from_pretrained(rqvae_dir, trust_remote_code=True).eval()
with torch.no_grad():
    out["rqvae_codes"] = rqvae.encode_codes(torch.tensor(inputs["embeddings"])).tolist()
out["rqvae_table_items"] = rqvae.semantic_id_table.item_ids

colarec = AutoModelForSeq2SeqLM.from_pretrained(colarec_dir, trust_remote_code=True).eval()
with torch.no_grad():
    out["colarec_logits"] = colarec(
        input_ids=torch.tensor(inputs["colarec_input_ids"]), decoder_input_ids=torch.tensor(inputs["colarec_decoder"])
    ).logits.tolist()
out["colarec_config"] = type(AutoConfig.from_pretrained(colarec_dir, trust_remote_code=True)).__name__
print(json.dumps(out))
"""

RESAVED_SCRIPT = r"""
import importlib.util, json, sys
import torch
assert importlib.util.find_spec("hf_genrec") is None
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
batch = tok.batch_encode_histories([[int(i) for i in sys.argv[2].split(",")]], user_ids=[int(sys.argv[3])])
print(json.dumps(model(**batch, decoder_input_ids=torch.zeros(1, 1, dtype=torch.long)).logits.tolist()))
"""


def _run_without_package(tmp_path: Path, script: str, *args: str) -> dict | list:
    """Run ``script`` in a Python whose path holds only the stdlib and site-packages (no editable hf_genrec)."""
    paths = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(p)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_"))}
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        HF_HUB_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        HF_HOME=str(tmp_path / "hf_home"),
        TOKENIZERS_PARALLELISM="false",
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _history_rows(data_dir: Path, users: int = 6) -> list[tuple[int, list[int]]]:
    lines = (data_dir / "amazon-beauty" / "sequences.txt").read_text().splitlines()[:users]
    return [(int(parts[0]), [int(t) for t in parts[1:]]) for parts in (line.split() for line in lines)]


def test_checkpoints_load_as_remote_code_without_the_package(data_dir, tmp_path):
    rows = _history_rows(data_dir)
    items = sorted({i for _, history in rows for i in history})
    rng = np.random.default_rng(0)
    table = SemanticIdTable.from_content_codes(items, rng.integers(0, 6, (len(items), 3)), 6, method="random")

    # TIGER + its tokenizer, in one folder as the training pipeline saves them
    tok = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=16)
    torch.manual_seed(0)
    config = TigerConfig.from_tokenizer(tok, d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=1, dropout_rate=0.0)
    tiger = TigerForGenerativeRecommendation(config).eval()
    tiger_dir = tmp_path / "tiger"
    tiger.save_pretrained(tiger_dir)
    tok.save_pretrained(tiger_dir)
    saved = json.loads((tiger_dir / "config.json").read_text())["auto_map"]
    assert saved["AutoModelForSeq2SeqLM"] == saved["AutoModel"] == "modeling_tiger.TigerForGenerativeRecommendation"
    assert json.loads((tiger_dir / "tokenizer_config.json").read_text())["auto_map"] == {
        "AutoTokenizer": ["tokenization_genrec.GenRecTokenizer", None]
    }
    for name in ("modeling_tiger", "configuration_tiger", "tokenization_genrec", "id_table", "errors"):
        text = (tiger_dir / f"{name}.py").read_text()
        assert "from ..." not in text and "import hf_genrec" not in text and "from hf_genrec" not in text, name

    # RQ-VAE item tokenizer with its ID table
    torch.manual_seed(0)
    rqvae = RQVAETokenizerModel(RQVAETokenizerConfig(input_dim=8, hidden_dims=[16], latent_dim=4, num_levels=2, codebook_size=5))
    embeddings = torch.randn(20, 8)
    rqvae.train()
    rqvae(embeddings)  # first batch: input statistics and k-means codebook init
    rqvae.eval()
    rqvae.semantic_id_table = SemanticIdTable.from_content_codes(
        list(range(20)), rqvae.encode_codes(embeddings).numpy(), 5, method="rqvae"
    )
    rqvae_dir = tmp_path / "rqvae"
    rqvae.save_pretrained(rqvae_dir)

    # ColaRec
    torch.manual_seed(0)
    colarec = ColaRecForGenerativeRecommendation(
        ColaRecConfig(vocab_size=30, num_items=10, num_users=5, codebook_sizes=[3, 3], d_model=16, d_kv=4, d_ff=32,
                      num_layers=1, num_heads=2, dropout_rate=0.0)
    ).eval()
    colarec_dir = tmp_path / "colarec"
    colarec.save_pretrained(colarec_dir)

    histories, users = [h[:-1] for _, h in rows], [u for u, _ in rows]
    decoder_input_ids = [[0, tok.encode_item(h[-1])[0]] for _, h in rows]
    inputs = {
        "histories": histories,
        "users": users,
        "decoder_input_ids": decoder_input_ids,
        "item_codes": [tok.encode_item(i) for i in items[:5]] + [[0, 1, 2]],
        "embeddings": embeddings[:7].tolist(),
        "colarec_input_ids": [[3, 7, 8, 9, 0], [3, 11, 12, 0, 0]],
        "colarec_decoder": [[0, 2], [0, 4]],
    }
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    resave_dir = tmp_path / "resaved"
    remote = _run_without_package(
        tmp_path, REMOTE_SCRIPT, str(tiger_dir), str(rqvae_dir), str(colarec_dir), str(resave_dir), str(tmp_path / "inputs.json")
    )

    assert remote["tiger_classes"][:2] == ["GenRecTokenizer", "TigerForGenerativeRecommendation"]
    assert remote["tiger_classes"][2].startswith("transformers_modules.")  # really the checkpoint's copy
    assert remote["automodel"] == "TigerForGenerativeRecommendation"
    assert remote["history_ids"] == [tok.encode_history(h, u) for h, u in zip(histories, users)]
    batch = tok.batch_encode_histories(histories, user_ids=users)
    with torch.no_grad():
        logits = tiger(**batch, decoder_input_ids=torch.tensor(decoder_input_ids)).logits
        generated = tiger.generate(**batch, num_beams=4, num_return_sequences=4, do_sample=False)
    torch.testing.assert_close(torch.tensor(remote["tiger_logits"]), logits, rtol=1e-5, atol=1e-5)
    assert remote["generated"] == generated.tolist()
    assert remote["decoded"] == items[:5] + [tok.decode_items([[0, 1, 2]])[0]] == items[:5] + [None]

    with torch.no_grad():
        assert remote["rqvae_codes"] == rqvae.encode_codes(embeddings[:7]).tolist()
    assert remote["rqvae_table_items"] == list(range(20))

    with torch.no_grad():
        colarec_logits = colarec(
            input_ids=torch.tensor(inputs["colarec_input_ids"]), decoder_input_ids=torch.tensor(inputs["colarec_decoder"])
        ).logits
    torch.testing.assert_close(torch.tensor(remote["colarec_logits"]), colarec_logits, rtol=1e-5, atol=1e-5)
    assert remote["colarec_config"] == "ColaRecConfig"

    # the checkpoint re-saved from remote code loads again, without the package, to the same outputs
    assert {"modeling_tiger.py", "tokenization_genrec.py", "id_table.py"} <= {p.name for p in resave_dir.iterdir()}
    again = _run_without_package(tmp_path, RESAVED_SCRIPT, str(resave_dir), ",".join(map(str, histories[0])), str(users[0]))
    torch.testing.assert_close(torch.tensor(again), logits[:1, :1], rtol=1e-5, atol=1e-5)


def test_in_package_loading_still_uses_package_classes(tmp_path):
    """With hf_genrec installed the Auto classes keep returning its classes (no trust_remote_code needed)."""
    from transformers import AutoModelForSeq2SeqLM

    config = TigerConfig(vocab_size=40, codebook_sizes=[4, 4], d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=1)
    TigerForGenerativeRecommendation(config).save_pretrained(tmp_path)
    assert type(AutoModelForSeq2SeqLM.from_pretrained(tmp_path)) is TigerForGenerativeRecommendation
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    config.save_pretrained(tmp_path / "config_only")  # a bare config carries the code its auto_map names
    assert (tmp_path / "config_only" / "modeling_tiger.py").is_file()


def test_flattening_rewrites_package_imports_and_rejects_clashes():
    closure = code_closure(["hf_genrec.models.tiger.modeling_tiger"])
    assert set(closure) == {
        "hf_genrec.models.tiger.modeling_tiger",
        "hf_genrec.models.tiger.configuration_tiger",
        "hf_genrec.models.fast_dropout",
        "hf_genrec.models.t5_level_decoding",
        "hf_genrec.models.generate_recommend",  # model.recommend(): constrained generate() over the ID table
        "hf_genrec.models.recommend_base",  # model.load_processor() and the argument check
        "hf_genrec.models.publishing",
        "hf_genrec.models.tiger.processing_tiger",  # the processor model.recommend() loads
        "hf_genrec.models.processing_utils",
        "hf_genrec.models.genrec_tokenizer.tokenization_genrec",
        "hf_genrec.semantic_ids.constraints",
        "hf_genrec.semantic_ids.id_trie",
        "hf_genrec.semantic_ids.id_table",
        "hf_genrec.errors",
        "hf_genrec.io_utils",
        "hf_genrec.remote_code",
    }
    source = flat_source("hf_genrec.models.tiger.modeling_tiger", closure["hf_genrec.models.tiger.modeling_tiger"])
    assert "from .errors import CheckpointMismatchError, InvalidInputError" in source
    assert "from .configuration_tiger import TigerConfig" in source
    assert "from .fast_dropout import use_fast_dropout" in source  # two levels up, flattened the same way
    with pytest.raises(ConfigError, match="package"):
        code_closure(["hf_genrec.models.tiger"])  # a package, not a module
    with pytest.raises(ConfigError, match="both be saved as errors.py"):
        code_closure(["hf_genrec.errors", "email.errors"])  # one folder cannot hold two errors.py


RECOMMEND_SCRIPT = r"""
import importlib.util, json, sys
assert importlib.util.find_spec("hf_genrec") is None, "hf_genrec must not be importable here"
from transformers import AutoModelForSeq2SeqLM, AutoProcessor

requests = json.loads(open(sys.argv[1]).read())
out = {}
for family, folder in requests["folders"].items():
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True)
    rows = requests["rows"][family]
    out[family] = {
        "module": type(model).__module__,
        "recs": model.recommend([r["history"] for r in rows], k=10, num_beams=20,
                                user_ids=[r["user_id"] for r in rows], exclude=[r["exclude"] for r in rows]),
        "processor": type(AutoProcessor.from_pretrained(folder, trust_remote_code=True)).__name__,
    }
print(json.dumps(out))
"""


def test_remote_code_checkpoints_recommend_valid_items_without_the_package(trained_checkpoints, tmp_path):
    """Only transformers and trust_remote_code=True: the checkpoint's own code ranks valid catalogue items,
    the items the package's fast decoder ranks (generate() constrained to the catalogue's IDs)."""
    import hf_genrec
    from hf_genrec.data import load_rec_dataset
    from hf_genrec.inference.saved_models import load_saved_model

    rows = {}
    for family in ("tiger", "colarec"):
        split = load_rec_dataset(trained_checkpoints["recipes"][family]["dataset"], trained_checkpoints["data"]).splits(20)["test"]
        rows[family] = [{"history": r["history"], "user_id": r["user_id"], "exclude": r["exclude"]} for r in split.select(range(16))]
    folders = {family: str(trained_checkpoints[family]) for family in rows}
    (tmp_path / "requests.json").write_text(json.dumps({"folders": folders, "rows": rows}))
    remote = _run_without_package(tmp_path, RECOMMEND_SCRIPT, str(tmp_path / "requests.json"))
    for family, answer in remote.items():
        assert answer["module"].startswith("transformers_modules.")
        assert answer["processor"] == {"tiger": "TigerProcessor", "colarec": "ColaRecProcessor"}[family]
        saved = load_saved_model(trained_checkpoints[family])
        catalogue = set(saved.processor.item_ids)
        local = hf_genrec.recommend(saved.model, saved.processor, [r["history"] for r in rows[family]], k=10, num_beams=20,
                                    user_ids=[r["user_id"] for r in rows[family]], exclude=[r["exclude"] for r in rows[family]])
        for user, (recs, row) in enumerate(zip(answer["recs"], rows[family])):
            items = [item for item, _ in recs]
            assert 0 < len(items) <= 10 and set(items) <= catalogue, f"{family} user {user}: invalid ids"
            assert not set(items) & set(row["exclude"])
        same = sum([i for i, _ in r] == [i for i, _ in l] for r, l in zip(answer["recs"], local))
        assert same >= 14, f"{family}: {same}/16 users ranked alike"  # generate() vs the fast decoder: ties aside
