"""Model cards for saved hf_genrec models, rendered from the Jinja templates in ``hub_cards/``.

A card is built with huggingface_hub's own ``ModelCardData`` + ``ModelCard.from_template`` so the
metadata block is the Hub's format: ``library_name: hf_genrec``, tags, datasets, license and a
``model-index`` made from ``eval_results.json``, the training's own test record that ``hf-genrec
train`` writes (one ``EvalResult`` per ``metric@k``, with the dataset, split, protocol and k;
``hf-genrec evaluate`` keeps its records apart, in ``evaluations.json``, so they never reach the
model-index).  The body says how the model was trained (``recipe.yaml`` embedded verbatim) and how
to load it.

Templates are looked up, in order, in the ``template_dir`` argument, the directory named by the
``HF_GENREC_HUB_CARDS`` environment variable, and the ``hub_cards/`` folder at the top of the source
tree (found relative to this file, i.e. in an editable install / checkout).  A non-editable install
has no ``hub_cards/``: point ``HF_GENREC_HUB_CARDS`` at a copy of it.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ..errors import ConfigError, DataFormatError, InvalidInputError
from ..evaluation.records import EVAL_RESULTS_FILE
from ..io_utils import atomic_write_text
from ..models.adapter_folders import adapter_base, family_of_model
from ..models.processing_utils import PROCESSOR_FILE
from ..models.registry import family_names, family_of_model_type, get_family
from ..semantic_ids.id_table import SEMANTIC_ID_FILE
from ..recipes.yaml_recipes import RECIPE_FILE, load_recipe_yaml
from .staging import is_local_path, publishable_recipe

MODEL_CARD_FILE = "README.md"
TEMPLATE_DIR_ENV = "HF_GENREC_HUB_CARDS"
LIBRARY_NAME = "hf_genrec"

_SOURCE_TREE_CARDS = Path(__file__).resolve().parents[3] / "hub_cards"
_METRIC_KEY = re.compile(r"^([A-Za-z][A-Za-z_]*)@(\d+)$")
_METRIC_NAMES = {"recall": "Recall", "ndcg": "NDCG", "hr": "HR", "hit": "HitRate", "hitrate": "HitRate",
                 "mrr": "MRR", "precision": "Precision", "map": "MAP"}
@dataclass(frozen=True)
class CardInfo:
    """What a card needs to know of a model kind: its template file, tags and task name."""

    template: str
    tags: tuple[str, ...]
    task_name: str


# Item tokenizers are not recommender families, but they are published too.
_ITEM_TOKENIZER_CARDS = {
    "rqvae_tokenizer": CardInfo("rqvae_tokenizer.md", ("rq-vae", "item-tokenizer"), "Recommendation"),
}


def card_kinds() -> list[str]:
    """Every kind of model a card can be rendered for: the registered families and the item tokenizers."""
    return family_names() + sorted(_ITEM_TOKENIZER_CARDS)


def card_info(family: str) -> CardInfo:
    if family in _ITEM_TOKENIZER_CARDS:
        return _ITEM_TOKENIZER_CARDS[family]
    if family not in family_names():
        raise InvalidInputError(f"unknown model-card family {family!r}; expected one of {card_kinds()}")
    registered = get_family(family)
    return CardInfo(registered.card_template, registered.card_tags, registered.task_name)


_BASE_TAGS = ["hf_genrec", "recommendation", "generative-recommendation", "semantic-ids"]
_CONFIG_NOISE = {"transformers_version", "architectures", "model_type", "auto_map", "id2label", "label2id",
                 "_name_or_path", "torch_dtype", "dtype", "output_attentions", "output_hidden_states",
                 "return_dict", "chunk_size_feed_forward", "problem_type", "tie_encoder_decoder"}


# ---------------------------------------------------------------------------------------------- templates
def find_template(family: str, template_dir: str | os.PathLike | None = None) -> Path:
    """Path of the family's template: ``template_dir``, else ``$HF_GENREC_HUB_CARDS``, else ``<source tree>/hub_cards``."""
    template = card_info(family).template
    if template_dir is not None:
        directory, origin = Path(template_dir), "template_dir argument"
    elif os.environ.get(TEMPLATE_DIR_ENV):
        directory, origin = Path(os.environ[TEMPLATE_DIR_ENV]), f"${TEMPLATE_DIR_ENV}"
    else:
        directory, origin = _SOURCE_TREE_CARDS, "the source tree's hub_cards/"
    path = directory / template
    if not path.is_file():
        raise ConfigError(
            f"model-card template {path} not found (looked in {origin}); pass template_dir=... or set "
            f"{TEMPLATE_DIR_ENV} to a directory holding the hub_cards/*.md templates"
        )
    return path


def infer_family(model_dir: str | os.PathLike) -> str | None:
    """The card family of a saved model, from ``config.json``'s ``model_type`` (``None`` if not ours)."""
    base = adapter_base(model_dir)
    if base is not None:  # an adapter folder: the family of the model it adapts
        return family_of_model(base).name if Path(base).is_dir() else None
    model_type = str(_read_config(Path(model_dir)).get("model_type", ""))
    if model_type in _ITEM_TOKENIZER_CARDS:
        return model_type
    family = family_of_model_type(model_type)
    return family.name if family is not None else None


# ---------------------------------------------------------------------------------------------- eval results
def parse_eval_results(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]], family: str = "tiger", source: object = "eval_results"
) -> list:
    """``EvalResult``s (one per ``metric@k`` key) from the evaluate command's JSON: a dict or a list of dicts.

    Each dict needs ``dataset``; ``split`` defaults to ``"test"``; ``protocol`` becomes the dataset
    config; ``k`` goes to the metric's args.
    """
    from huggingface_hub import EvalResult

    records = [data] if isinstance(data, Mapping) else data
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise DataFormatError("evaluation results must be a JSON object or a list of objects", path=source)
    task_name = card_info(family).task_name
    results = []
    for index, record in enumerate(records):
        where = f"{source}[{index}]" if len(records) > 1 else source
        if not isinstance(record, Mapping):
            raise DataFormatError("evaluation result must be a JSON object", path=where)
        dataset = record.get("dataset")
        if not isinstance(dataset, str) or not dataset:
            raise DataFormatError("evaluation result lacks the dataset name", path=where, field="dataset")
        split = str(record.get("split") or "test")
        protocol = str(record["protocol"]).strip() if record.get("protocol") else None
        # the evaluate command may write a description ("leave-one-out: last item = ..."): the id is its head
        protocol_id = protocol.split(":", 1)[0].strip() if protocol else None
        metrics = [(key, m) for key in record if (m := _METRIC_KEY.match(str(key)))]
        if not metrics:
            raise DataFormatError("evaluation result holds no 'metric@k' values (e.g. 'ndcg@10')", path=where)
        for key, match in metrics:
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DataFormatError(f"metric value must be a finite number, got {value!r}", path=where, field=key)
            metric, k = match.group(1).lower(), int(match.group(2))
            results.append(
                EvalResult(
                    task_type="recommendation",
                    task_name=task_name,
                    dataset_type=dataset,
                    dataset_name=_pretty_dataset(dataset),
                    dataset_split=split,
                    dataset_config=protocol_id,
                    dataset_args={"protocol": protocol} if protocol and protocol != protocol_id else None,
                    metric_type=metric,
                    metric_name=f"{_METRIC_NAMES.get(metric, metric)}@{k}",
                    metric_value=float(value),
                    metric_args={"k": k},
                )
            )
    return results


def load_eval_results(model_dir: str | os.PathLike) -> dict | list | None:
    """The saved ``eval_results.json`` of a model directory, or ``None`` when there is none."""
    path = Path(model_dir) / EVAL_RESULTS_FILE
    if not path.exists():
        return None
    return _read_json(path)


def _pretty_dataset(name: str) -> str:
    return " ".join(part if part.isupper() else part.capitalize() for part in re.split(r"[-_]", name))


# ---------------------------------------------------------------------------------------------- rendering
def render_model_card(
    model_dir: str | os.PathLike,
    family: str,
    eval_results: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    recipe_path: str | os.PathLike | None = None,
    base_model: str | None = None,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    datasets: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    license: str = "apache-2.0",
    template_dir: str | os.PathLike | None = None,
):
    """Render the ``ModelCard`` of a saved model directory.

    ``eval_results`` defaults to the directory's ``eval_results.json`` and ``recipe_path`` to its
    ``recipe.yaml`` (both optional; keys holding absolute local paths are left out); ``repo_id`` is the
    id shown in the usage snippet, whose example history is made of the checkpoint's own item ids.
    An adapter folder's card loads the base model it names, then the adapter.
    """
    from huggingface_hub import ModelCard, ModelCardData

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DataFormatError("model directory not found", path=model_dir)
    template = find_template(family, template_dir)
    config = _read_config(model_dir)

    source: object = model_dir / EVAL_RESULTS_FILE
    if eval_results is None:
        eval_results = load_eval_results(model_dir)
    else:
        source = "eval_results argument"
    results = parse_eval_results(eval_results, family, source) if eval_results else []

    recipe_text, recipe_name, recipe = _read_recipe(model_dir, recipe_path)
    adapted = adapter_base(model_dir)  # a LoRA adapter folder: the Hub id of the model it adapts
    adapted = adapted if adapted is not None and not is_local_path(adapted) and not Path(adapted).exists() else None
    base_model = base_model or adapted
    name = model_name or (repo_id.split("/")[-1] if repo_id else model_dir.resolve().name)
    dataset_names = list(datasets) if datasets is not None else _dataset_names(results, recipe)
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        license=license,
        base_model=base_model,
        datasets=dataset_names or None,
        tags=_BASE_TAGS + list(card_info(family).tags) + list(tags or []),
        metrics=sorted({r.metric_type for r in results}) or None,
        model_name=name if results else None,  # only the model-index needs it in the metadata
        eval_results=results or None,
    )
    rows = [
        {"dataset": r.dataset_type, "split": r.dataset_split, "protocol": r.dataset_config or "-",
         "metric": r.metric_name, "value": r.metric_value}
        for r in results
    ]
    records = [eval_results] if isinstance(eval_results, Mapping) else list(eval_results or [])
    users = sorted({int(rec["users"]) for rec in records if isinstance(rec.get("users"), int)})
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=name,
        repo_id=repo_id or name,
        model_type=config.get("model_type", "unknown"),
        architectures=config.get("architectures") or [],
        num_parameters=_count_parameters(model_dir),
        semantic_ids=_semantic_id_summary(model_dir),
        example_history=_example_history(model_dir),
        adapter_base=adapted,
        eval_rows=rows,
        eval_users=", ".join(str(u) for u in users),
        recipe=recipe_text,
        recipe_name=recipe_name,
        config_yaml=_config_yaml(config),
        base_model=base_model,
        license=license,
    )


def save_model_card(model_dir: str | os.PathLike, family: str | None = None, **kwargs) -> Path:
    """Render the card (see :func:`render_model_card`) and write it to ``model_dir/README.md`` atomically."""
    model_dir = Path(model_dir)
    family = family or infer_family(model_dir)
    if family is None:
        raise ConfigError(
            f"cannot tell the model family of {model_dir} from config.json's model_type; "
            f"pass family= one of {card_kinds()}"
        )
    card = render_model_card(model_dir, family, **kwargs)
    path = model_dir / MODEL_CARD_FILE
    atomic_write_text(path, str(card))
    return path


# ---------------------------------------------------------------------------------------------- helpers
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None


def _read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.exists():
        return {}
    config = _read_json(path)
    if not isinstance(config, dict):
        raise DataFormatError("config.json must hold a JSON object", path=path)
    return config


def _read_recipe(model_dir: Path, recipe_path: str | os.PathLike | None) -> tuple[str | None, str | None, Any]:
    if recipe_path is None:
        path = model_dir / RECIPE_FILE
        if not path.exists():
            return None, None, None
    else:
        path = Path(recipe_path)
        if not path.is_file():
            raise DataFormatError("training recipe not found", path=path)
    try:
        text = publishable_recipe(path.read_text(encoding="utf-8")).strip()  # no absolute path of this machine
        recipe = load_recipe_yaml(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DataFormatError(f"invalid YAML recipe ({exc.__class__.__name__})", path=path,
                              line=line + 1 if line is not None else None) from None
    return text, path.name, recipe


def _dataset_names(results: list, recipe: Any) -> list[str]:
    names = [r.dataset_type for r in results]
    if isinstance(recipe, Mapping):
        for key in ("dataset", "dataset_name"):
            if isinstance(recipe.get(key), str):
                names.append(recipe[key])
    return list(dict.fromkeys(names))


def _count_parameters(model_dir: Path) -> int | None:
    """Parameters stored in the directory's safetensors files (read from their headers, no tensors loaded)."""
    total, found = 0, False
    for path in sorted(model_dir.glob("*.safetensors")):
        try:
            with open(path, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
        except (OSError, struct.error, ValueError):
            raise DataFormatError("unreadable safetensors header", path=path) from None
        for key, info in header.items():
            if key != "__metadata__":
                total += math.prod(info.get("shape", []))
                found = True
    return total if found else None


def _semantic_id_summary(model_dir: Path) -> dict | None:
    path = model_dir / SEMANTIC_ID_FILE
    if not path.exists():
        return None
    data = _read_json(path)
    sizes = data.get("codebook_sizes") if isinstance(data, dict) else None
    if not isinstance(sizes, list) or not isinstance(data.get("item_ids"), list):
        raise DataFormatError("semantic-ID table lacks codebook_sizes / item_ids", path=path)
    return {
        "num_items": len(data["item_ids"]),
        "levels": len(sizes),
        "content_levels": int(data.get("content_levels") or len(sizes)),
        "codebook_sizes": sizes,
        "method": data.get("method", "unknown"),
    }


def _example_history(model_dir: Path) -> str:
    """Three items of the checkpoint's own catalogue (ID table, else the processor's item list) for the card's snippet."""
    for name, key in ((SEMANTIC_ID_FILE, "item_ids"), (PROCESSOR_FILE, "item_ids")):
        path = model_dir / name
        data = _read_json(path) if path.is_file() else None
        items = data.get(key) if isinstance(data, dict) else None
        if isinstance(items, list) and items:
            return json.dumps([int(i) for i in items[:3]])
    return "[...]"  # no catalogue beside the model: the reader fills in item ids


def _config_yaml(config: dict) -> str | None:
    kept = {k: v for k, v in config.items()
            if k not in _CONFIG_NOISE and not (isinstance(v, (list, dict)) and len(v) > 32)}
    return yaml.safe_dump(kept, sort_keys=False).strip() if kept else None
