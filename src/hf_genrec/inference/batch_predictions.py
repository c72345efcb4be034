"""Batch predictions: a file of users in, the same lines with their top-K items out (``hf-genrec recommend --input``).

The line format is :mod:`~hf_genrec.inference.prediction_files`'.  An evaluation's predictions file
(``hf-genrec evaluate --predictions``) is a valid input: each user is ranked from the same history,
user id and exclude list, through the same processor and ranking step, with the recipe's beam
width, so the lists agree with the evaluation's.  Output lines carry ``titles`` too when the
catalogue is known.
"""

from __future__ import annotations

import os
import sys
from itertools import islice
from pathlib import Path
from typing import Iterator

from ..data import ItemCatalogue, RecDataset
from ..errors import DataFormatError, InvalidInputError
from ..generation import recommend
from ..generation.ranking import check_ranking_arguments, scores_items_directly
from .checks import saved_num_beams
from .prediction_files import PredictionRequest, check_new_output, read_requests, write_jsonl
from .saved_models import load_saved_model, optional_dataset, read_saved_recipe

READ_CHUNK = 4096  # lines ranked per call of recommend(); it sorts them by length and batches them


def _count_lines(path: Path) -> int:
    """Non-blank lines (the progress bar's total)."""
    with open(path, "rb") as handle:
        return sum(1 for raw in handle if raw.strip())


def _chunks(requests: Iterator[PredictionRequest], size: int) -> Iterator[list[PredictionRequest]]:
    while chunk := list(islice(requests, size)):
        yield chunk


def _output_line(request: PredictionRequest, ranked: list[tuple[int, float]], catalogue: ItemCatalogue | None) -> dict:
    record = dict(request.record)
    record["items"] = [item for item, _ in ranked]
    record["scores"] = [score for _, score in ranked]
    if catalogue is not None:
        record["titles"] = [catalogue.title(item) if item in catalogue else None for item, _ in ranked]
    return record


def recommend_file(
    model_dir: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    top_k: int = 10,
    num_beams: int | None = None,
    batch_size: int = 256,
    overwrite: bool = False,
    dataset: str | None = None,
    data_dir: str | None = None,
    show_progress: bool = True,
) -> dict:
    """Rank every line of ``input_path`` with the saved model and write the lines with their items to ``output_path``.

    ``num_beams`` defaults to the recipe's ``generation_num_beams`` (what evaluation used).  Lines
    are read and ranked in chunks (memory stays bounded), with a progress bar on stderr.
    """
    from tqdm.auto import tqdm

    output = check_new_output(output_path, overwrite)
    input_path = Path(input_path)
    if not input_path.is_file():
        raise DataFormatError("file not found", path=input_path)
    rec_dataset: RecDataset | None = optional_dataset(model_dir, dataset, data_dir)
    saved = load_saved_model(model_dir, rec_dataset)
    catalogue = rec_dataset.catalogue if rec_dataset is not None else None
    beams = num_beams or saved_num_beams(read_saved_recipe(model_dir), model_dir)
    check_ranking_arguments(top_k, beams, len(saved.processor.item_ids), exact=scores_items_directly(saved.model))
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    requests = read_requests(input_path, set(saved.processor.item_ids))

    def lines() -> Iterator[dict]:
        with tqdm(total=_count_lines(input_path), unit="user", desc="recommend", file=sys.stderr, disable=not show_progress) as bar:
            for chunk in _chunks(requests, READ_CHUNK):
                ranked = recommend(
                    saved.model, saved.processor, [r.history for r in chunk], k=top_k, num_beams=beams,
                    user_ids=[r.user_id for r in chunk], exclude=[r.exclude for r in chunk], batch_size=batch_size,
                )
                yield from (_output_line(request, items, catalogue) for request, items in zip(chunk, ranked))
                bar.update(len(chunk))

    users = write_jsonl(output, lines())
    return {"model": str(model_dir), "input": str(input_path), "output": str(output), "users": users,
            "top_k": top_k, "num_beams": beams}


__all__ = ["recommend_file"]
