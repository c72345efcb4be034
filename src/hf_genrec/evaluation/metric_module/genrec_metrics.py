"""Recall@K / NDCG@K as an `evaluate` metric, loadable offline with `evaluate.load(<this folder>)`."""

import datasets
import evaluate

from hf_genrec.evaluation.metrics import ranking_metrics

_DESCRIPTION = "Recall@K and NDCG@K of ranked item lists against one or several target items per user."
_KWARGS = """
predictions: list of ranked item-id lists, best first.
references: list of target item-id lists (one or more targets per user).
ks: cut-offs (default [5, 10]).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class GenrecMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ks=(5, 10)):
        return ranking_metrics(predictions, references, ks=tuple(ks))
