"""Training arguments for generative recommenders: TrainingArguments plus decoding for evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class GenRecTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the beam search that evaluation ranks by (like Seq2SeqTrainingArguments)."""

    generation_num_beams: int = field(default=20, metadata={"help": "beam width of constrained decoding at evaluation"})
    metric_ks: list[int] = field(default_factory=lambda: [5, 10], metadata={"help": "cut-offs of Recall@K / NDCG@K"})
    eval_max_users: int | None = field(
        default=None, metadata={"help": "score only the first N users of the validation split during training (speed)"}
    )
    plot_loss_curves: bool = field(default=False, metadata={"help": "write loss_curves.png (one curve per loss term)"})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "kept False: collators read the raw history/targets columns"}
    )
