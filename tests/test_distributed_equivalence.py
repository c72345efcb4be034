"""Several processes train the same model as one: 2 gloo processes (DDP via `accelerate launch` and the
shipped config) follow the single-process loss curve of the same global batch; the shipped FSDP and
DeepSpeed configs parse with accelerate's own parser, and the FSDP one starts training.

(Starting N processes and gathered evaluation: tests/test_distributed.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from genrec_fixtures import TINY_TIGER, random_table, write_beauty_slice
from hf_genrec.data import load_rec_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training_args" / "accelerate"
STEPS = 6


def launch(config: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config), "--num_processes", "2"]


def losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """The same recipe trained by 1 process at batch 16 and by 2 processes at batch 8 each (DDP, FSDP config)."""
    root = tmp_path_factory.mktemp("equivalence")
    write_beauty_slice(data_dir, root / "data", users=80)
    random_table(load_rec_dataset("beauty-slice", root / "data").catalogue.item_ids).save(root / "ids")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    commands = {
        "one": ([sys.executable, "-m", "hf_genrec.cli.main"], 16),
        "ddp": (launch("ddp.yaml") + ["-m", "hf_genrec.cli.main"], 8),
        "fsdp": (launch("fsdp.yaml") + ["-m", "hf_genrec.cli.main"], 8),
    }
    results = {}
    for name, (command, batch) in commands.items():
        recipe = {
            **TINY_TIGER, "dataset": "beauty-slice", "data_dir": str(root / "data"), "semantic_ids": str(root / "ids"),
            "output_dir": str(root / name), "max_steps": STEPS, "logging_steps": 1, "dropout_rate": 0.0,
            "per_device_train_batch_size": batch, "save_strategy": "steps", "save_steps": STEPS,
            "test_at_end": False, "eval_max_users": 20,
        }
        (root / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
        proc = subprocess.run(command + ["train", "--config", str(root / f"{name}.yaml")], capture_output=True, text=True,
                              timeout=600, env=env, cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return root, results


def test_two_processes_follow_the_single_process_loss_curve(runs):
    root, results = runs
    assert results["one"]["validation_processes"] == 1 and results["ddp"]["validation_processes"] == 2
    single, double = losses(root / "one"), losses(root / "ddp")
    assert len(single) == len(double) == STEPS
    assert single[-1] < single[0] - 0.3  # it learns, so equal curves mean equal training
    assert double == pytest.approx(single, rel=1e-5, abs=1e-5)
    one, two = load_file(str(root / "one" / "model.safetensors")), load_file(str(root / "ddp" / "model.safetensors"))
    assert one.keys() == two.keys()
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-4


def test_fsdp_config_starts_training_on_two_processes(runs):
    """On CPU accelerate runs FSDP configs as plain multi-process data parallel (FSDP itself needs GPUs):
    this checks that the shipped config launches and trains, not that parameters are sharded."""
    root, results = runs
    assert results["fsdp"]["validation_processes"] == 2
    assert losses(root / "fsdp") == pytest.approx(losses(root / "one"), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_accelerate_configs_parse(name):
    """accelerate's own parser reads each config; the FSDP / DeepSpeed sections build accelerate's plugins."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin

    config = load_config_from_file(str(CONFIGS / name))
    assert config.num_processes == 2 and config.num_machines == 1
    if config.distributed_type == DistributedType.FSDP:
        fsdp = {k.removeprefix("fsdp_"): v for k, v in config.fsdp_config.items()}
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=fsdp["version"], auto_wrap_policy=fsdp["auto_wrap_policy"],
            transformer_cls_names_to_wrap=[fsdp["transformer_layer_cls_to_wrap"]],
            reshard_after_forward=fsdp["reshard_after_forward"], state_dict_type=fsdp["state_dict_type"],
        )
        assert plugin.fsdp_version == 2
        from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation
        from hf_genrec.models.genrec_tokenizer import GenRecTokenizer

        model = TigerForGenerativeRecommendation(TigerConfig.from_tokenizer(
            GenRecTokenizer.from_semantic_id_table(random_table(list(range(1, 50))), num_user_buckets=4),
            d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1, num_decoder_layers=1,
        ))
        assert any(type(m).__name__ == fsdp["transformer_layer_cls_to_wrap"] for m in model.modules())
    elif config.distributed_type == DistributedType.DEEPSPEED:
        plugin = DeepSpeedPlugin(**config.deepspeed_config)
        assert plugin.deepspeed_config["zero_optimization"]["stage"] == config.deepspeed_config["zero_stage"]
    else:
        assert config.distributed_type == DistributedType.MULTI_GPU
