"""Checkpoints saved before the architecture move (#21) still load, with the package and as remote code.

The fixtures in ``tests/fixtures/pre_move_checkpoints`` were written by hf_genrec at commit c322ca5 and
are never regenerated: ``expected.json`` holds the outputs they gave when they were saved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from test_remote_code import _run_without_package

import hf_genrec  # noqa: F401  (registers the Auto classes)

FIXTURES = Path(__file__).parent / "fixtures" / "pre_move_checkpoints"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())

REMOTE_SCRIPT = r"""
import importlib.util, json, sys
import torch
assert importlib.util.find_spec("hf_genrec") is None
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer
root = sys.argv[1]
exp = json.loads(open(root + "/expected.json").read())
tok = AutoTokenizer.from_pretrained(root + "/tiger", trust_remote_code=True)
tiger = AutoModelForSeq2SeqLM.from_pretrained(root + "/tiger", trust_remote_code=True).eval()
batch = tok.batch_encode_histories(exp["histories"], user_ids=exp["users"])
rqvae = AutoModel.from_pretrained(root + "/rqvae", trust_remote_code=True).eval()
colarec = AutoModelForSeq2SeqLM.from_pretrained(root + "/colarec", trust_remote_code=True).eval()
with torch.no_grad():
    out = {
        "input_ids": batch["input_ids"].tolist(),
        "tiger_logits": tiger(**batch, decoder_input_ids=torch.tensor(exp["decoder_input_ids"])).logits.tolist(),
        "rqvae_codes": rqvae.encode_codes(torch.tensor(exp["rqvae_embeddings"])).tolist(),
        "colarec_logits": colarec(input_ids=torch.tensor(exp["colarec_input_ids"]),
                                  decoder_input_ids=torch.tensor(exp["colarec_decoder"])).logits.tolist(),
    }
print(json.dumps(out))
"""


def _close(actual, expected) -> None:
    torch.testing.assert_close(torch.as_tensor(actual), torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_pre_move_checkpoints_load_with_the_package():
    from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(FIXTURES / "tiger")
    tiger = AutoModelForSeq2SeqLM.from_pretrained(FIXTURES / "tiger").eval()
    rqvae = AutoModel.from_pretrained(FIXTURES / "rqvae").eval()
    colarec = AutoModelForSeq2SeqLM.from_pretrained(FIXTURES / "colarec").eval()
    for model in (tokenizer, tiger, rqvae, colarec):
        assert type(model).__module__.startswith("hf_genrec."), type(model)  # the package's classes, not the copies
    batch = tokenizer.batch_encode_histories(EXPECTED["histories"], user_ids=EXPECTED["users"])
    assert batch["input_ids"].tolist() == EXPECTED["input_ids"]
    with torch.no_grad():
        _close(tiger(**batch, decoder_input_ids=torch.tensor(EXPECTED["decoder_input_ids"])).logits, EXPECTED["tiger_logits"])
        assert rqvae.encode_codes(torch.tensor(EXPECTED["rqvae_embeddings"])).tolist() == EXPECTED["rqvae_codes"]
        logits = colarec(
            input_ids=torch.tensor(EXPECTED["colarec_input_ids"]), decoder_input_ids=torch.tensor(EXPECTED["colarec_decoder"])
        ).logits
        _close(logits, EXPECTED["colarec_logits"])


def test_pre_move_checkpoints_load_as_remote_code_without_the_package(tmp_path):
    copy = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, copy)  # transformers writes nothing into them, but a test must not risk it
    remote = _run_without_package(tmp_path, REMOTE_SCRIPT, str(copy))
    assert remote["input_ids"] == EXPECTED["input_ids"]
    _close(remote["tiger_logits"], EXPECTED["tiger_logits"])
    assert remote["rqvae_codes"] == EXPECTED["rqvae_codes"]
    _close(remote["colarec_logits"], EXPECTED["colarec_logits"])
