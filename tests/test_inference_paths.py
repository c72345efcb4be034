"""One input path per family: recommend(), evaluation and batch predictions rank every user alike, on
checkpoints trained in the test; decoding helpers read ColaRec's generate() output right."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import hf_genrec
from hf_genrec.data import load_rec_dataset
from hf_genrec.errors import CheckpointMismatchError, ConfigError, DataFormatError, InvalidInputError
from hf_genrec.inference.batch_predictions import recommend_file
from hf_genrec.inference.prediction_files import read_requests
from hf_genrec.inference.saved_models import evaluate_saved_model, load_saved_model
from hf_genrec.recipes.training_arguments import GenRecTrainingArguments
from hf_genrec.semantic_ids.constraints import SemanticIdLogitsProcessor, make_prefix_allowed_tokens_fn
from hf_genrec.training.trainer import GenRecTrainer

FAMILIES = ("tiger", "colarec")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_genrec.cli.main", *args], capture_output=True, text=True, timeout=300)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def split_rows(checkpoints: dict, family: str, users: int = 60):
    recipe = checkpoints["recipes"][family]
    dataset = load_rec_dataset(recipe["dataset"], checkpoints["data"])
    return dataset.splits(20)["test"].select(range(users))


@pytest.mark.parametrize("family", FAMILIES)
def test_recommend_ranks_every_user_as_evaluation_does(trained_checkpoints, family, tmp_path, one_torch_thread):
    saved = load_saved_model(trained_checkpoints[family])
    rows = split_rows(trained_checkpoints, family)
    beams = trained_checkpoints["recipes"][family]["generation_num_beams"]
    args = GenRecTrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=16, generation_num_beams=beams,
                                   metric_ks=[10], use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = GenRecTrainer(model=saved.model, args=args, processor=saved.processor)
    evaluated = trainer.rank(rows, top_k=10, num_beams=beams)
    recommended = hf_genrec.recommend(
        saved.model, saved.processor, rows["history"], k=10, num_beams=beams, user_ids=rows["user_id"],
        exclude=rows["exclude"], batch_size=7,  # other batches than evaluation's: a user's list does not depend on them
    )
    if family == "colarec":
        assert all(len(e) for e in rows["exclude"]), "ColaRec excludes the user's training items"
    for user, (items, ranked) in enumerate(zip(evaluated.items.tolist(), recommended)):
        assert [i for i in items if i >= 0] == [item for item, _ in ranked], f"user {user}"
        torch.testing.assert_close(evaluated.scores[user, : len(ranked)], torch.tensor([s for _, s in ranked]))


@pytest.mark.parametrize("family", FAMILIES)
def test_evaluation_predictions_then_batch_recommend_agree(trained_checkpoints, family, tmp_path, capsys):
    """The issue's check: evaluate --predictions P, then recommend --input P --output R: the same top-10 for every user.

    TIGER runs the commands; ColaRec the functions behind them (subprocesses cost ~15 s each on a loaded machine).
    """
    model = str(trained_checkpoints[family])
    predictions, ranked = tmp_path / "P.jsonl", tmp_path / "R.jsonl"
    if family == "tiger":
        metrics = last_json(cli("evaluate", "--model", model, "--split", "test", "--max-users", "200",
                                "--predictions", str(predictions)))
    else:
        metrics = evaluate_saved_model(model, split="test", max_users=200, predictions=predictions, scratch_dir=str(tmp_path))
    lines = read_lines(predictions)
    assert len(lines) == metrics["users"] > 0 and metrics["predictions"] == str(predictions)
    k = max(trained_checkpoints["recipes"][family].get("metric_ks", [5, 10]))
    for line in lines:
        assert list(line) == ["user_id", "history", "exclude", "items", "scores"]
        assert 0 < len(line["items"]) <= k and len(line["scores"]) == len(line["items"])
        assert line["scores"] == sorted(line["scores"], reverse=True)
        assert not set(line["items"]) & set(line["exclude"])

    if family == "tiger":
        proc = cli("recommend", "--model", model, "--input", str(predictions), "--output", str(ranked))
        result = last_json(proc)
        assert "100%" in proc.stderr  # the progress bar, on stderr
    else:
        result = recommend_file(model, predictions, ranked, show_progress=False)
    assert result["users"] == len(lines)
    out = read_lines(ranked)
    agree = [p["items"][:10] == r["items"][:10] for p, r in zip(lines, out)]
    assert len(out) == len(lines) and all(agree), f"{sum(agree)}/{len(agree)} users agree"
    for p, r in zip(lines, out):
        assert {k: r[k] for k in ("user_id", "history", "exclude")} == {k: p[k] for k in ("user_id", "history", "exclude")}
        assert len(r["titles"]) == len(r["items"]) and all(isinstance(t, str) for t in r["titles"])

    if family != "tiger":
        return
    # an existing output is never replaced silently (the CLI: one line, status 2)
    from hf_genrec.cli.main import main

    before = ranked.read_text()
    assert main(["recommend", "--model", model, "--input", str(predictions), "--output", str(ranked), "--top-k", "5"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"hf-genrec: error: {ranked} already exists: pass --overwrite (overwrite=True) to replace it"
    ]
    assert ranked.read_text() == before
    with pytest.raises(InvalidInputError, match="already exists"):
        evaluate_saved_model(model, max_users=5, predictions=predictions, scratch_dir=str(tmp_path))
    recommend_file(model, predictions, ranked, top_k=5, overwrite=True, show_progress=False)
    assert all(len(line["items"]) == 5 for line in read_lines(ranked))


def test_prediction_input_errors_name_the_line_and_field(trained_checkpoints, tmp_path):
    model = trained_checkpoints["tiger"]
    items = set(load_saved_model(model).processor.item_ids)
    item = min(items)
    cases = [
        ("{not json", r"line 2: invalid JSON"),
        ("[1, 2]", r"line 2: expected a JSON object"),
        ('{"user_id": 3}', r"line 2, field 'history': missing field"),
        ('{"history": []}', r"line 2, field 'history': expected a non-empty list of item ids"),
        ('{"history": ["12"]}', r"line 2, field 'history': expected a non-empty list of item ids"),
        ('{"history": [424242]}', r"line 2, field 'history': item 424242 is not in the model's catalogue"),
        (f'{{"history": [{item}], "user_id": "u1"}}', r"line 2, field 'user_id': expected an integer or null"),
        (f'{{"history": [{item}], "exclude": 5}}', r"line 2, field 'exclude': expected a list of item ids"),
    ]
    source = tmp_path / "in.jsonl"
    for text, message in cases:
        source.write_text(f'{{"history": [{item}]}}\n{text}\n')
        with pytest.raises(DataFormatError, match=message):
            list(read_requests(source, items))
    # a bad line late in a file: the run fails and leaves no partial output
    source.write_text(f'{{"history": [{item}]}}\n\n' * 2 + '{"history": [424242]}\n')  # blank lines are skipped
    with pytest.raises(DataFormatError, match="line 5, field 'history'"):
        recommend_file(model, source, tmp_path / "out.jsonl", show_progress=False)
    assert not (tmp_path / "out.jsonl").exists()
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataFormatError, match="empty.jsonl: file is empty"):
        list(read_requests(tmp_path / "empty.jsonl", items))
    with pytest.raises(DataFormatError, match="missing.jsonl: file not found"):
        recommend_file(model, tmp_path / "missing.jsonl", tmp_path / "out.jsonl")
    with pytest.raises(InvalidInputError, match="is a directory"):
        recommend_file(model, source, tmp_path)


def test_decoding_helpers_read_colarec_generate_output(trained_checkpoints, one_torch_thread):
    """decode_items and both generate() constraints use ColaRec's decoder vocabulary, not the tokenizer's."""
    saved = load_saved_model(trained_checkpoints["colarec"])
    model, processor = saved.model, saved.processor
    tokenizer = processor.tokenizer
    assert tokenizer.generation_level_offsets == model.config.generation_level_offsets != tokenizer.level_offsets
    histories = split_rows(trained_checkpoints, "colarec", users=12)["history"]
    expected = hf_genrec.recommend(model, processor, histories, k=5, num_beams=10)
    inputs = processor(histories)
    for constraint in ({"logits_processor": [SemanticIdLogitsProcessor.from_tokenizer(tokenizer)]},
                       {"prefix_allowed_tokens_fn": make_prefix_allowed_tokens_fn(tokenizer)}):
        with torch.no_grad():
            out = model.generate(**inputs, num_beams=10, num_return_sequences=5, do_sample=False, length_penalty=0.0,
                                 max_new_tokens=model.config.num_levels, **constraint)
        items = tokenizer.decode_items(out)
        assert None not in items
        decoded = [items[i * 5 : (i + 1) * 5] for i in range(len(histories))]
        agree = sum(d == [item for item, _ in e] for d, e in zip(decoded, expected))
        assert agree >= len(histories) - 1  # generate() and the fast decoder: the same lists, ties aside

    # a ColaRec tokenizer saved without the layout gets it from the model's config; a wrong one is refused
    del tokenizer.init_kwargs["generation_level_offsets"], tokenizer.init_kwargs["generation_eos_token_id"]
    assert tokenizer.generation_level_offsets == tokenizer.level_offsets
    processor.check_model(model.config)
    assert tokenizer.generation_level_offsets == model.config.generation_level_offsets
    tokenizer.set_generation_layout(tokenizer.level_offsets, 1)
    with pytest.raises(CheckpointMismatchError, match=r"generation_level_offsets \[3, .*\] disagree with the model's decoder vocabulary \[2, "):
        processor.check_model(model.config)


def test_recommend_command_argument_errors(trained_checkpoints, tmp_path, capsys):
    from hf_genrec.cli.main import main

    model = str(trained_checkpoints["tiger"])
    source = tmp_path / "in.jsonl"
    source.write_text('{"history": [1]}\n')
    for args, message in (
        (["--input", str(source)], "--input needs --output (the file the ranked lines go to)"),
        (["--history", "1", "--output", str(tmp_path / "o.jsonl")], "--output goes with --input (a file of histories)"),
        (["--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--user-id", "3"],
         "--user-id goes with --history; with --input each line carries its user_id"),
    ):
        assert main(["recommend", "--model", model, *args]) == 2
        assert capsys.readouterr().err.strip() == f"hf-genrec: error: {message}"


def test_model_recommend_checks_its_arguments(trained_checkpoints):
    from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation

    saved = load_saved_model(trained_checkpoints["tiger"])
    item = saved.processor.item_ids[0]
    with pytest.raises(InvalidInputError, match="k=11 is larger than num_beams=10"):
        saved.model.recommend([[item]], k=11, num_beams=10)
    with pytest.raises(InvalidInputError, match="history 1 is empty"):
        saved.model.recommend([[item], []], k=5, num_beams=10)
    with pytest.raises(InvalidInputError, match="2 user ids for 1 histories"):
        saved.model.recommend([[item]], k=5, num_beams=10, user_ids=[1, 2])
    fresh = TigerForGenerativeRecommendation(TigerConfig(vocab_size=40, codebook_sizes=[4, 4], d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=1))
    with pytest.raises(InvalidInputError, match="not loaded from a saved folder or repo: pass processor="):
        fresh.recommend([[item]], k=1, num_beams=2)
    with pytest.raises(ConfigError, match="2 generation level offsets for 4 levels"):
        saved.processor.tokenizer.set_generation_layout([3, 19], 1)
