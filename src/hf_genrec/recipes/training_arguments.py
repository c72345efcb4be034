"""Training arguments for generative recommenders: TrainingArguments plus decoding for evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..errors import ConfigError

DEFAULT_METRIC_KS = (5, 10)
MIN_DERIVED_BEAMS = 20


def derived_num_beams(metric_ks: list[int]) -> int:
    """The beam width of a recipe that sets none: twice the largest cut-off, at least 20.

    Why twice: fast beam search drops seen items at the last level, so with as many beams as the list is
    long a seen item in the beam leaves the list short.  TIGER on Phones ranking top-20 with 20 beams
    left 5% of users fewer than 20 items, validation N@20 0.0643; 40 beams: 0.0664, 100: 0.0664.
    """
    return max(MIN_DERIVED_BEAMS, 2 * max(metric_ks))


@dataclass
class GenRecTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the beam search that evaluation ranks by (like Seq2SeqTrainingArguments)."""

    generation_num_beams: int | None = field(
        default=None,
        metadata={"help": "beam width of constrained decoding at evaluation; default: twice the largest metric_ks cut-off, "
                          "at least 20 (derived_num_beams)"},
    )
    metric_ks: list[int] = field(default_factory=lambda: list(DEFAULT_METRIC_KS), metadata={"help": "cut-offs of Recall@K / NDCG@K"})
    eval_max_users: int | None = field(
        default=None,
        metadata={"help": "validation (model selection) scores a fixed random sample of N users (by `seed`), for speed; test is always whole"},
    )
    plot_loss_curves: bool = field(default=False, metadata={"help": "write loss_curves.png (one curve per loss term)"})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "kept False: collators read the raw history/targets columns"}
    )
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "wall-clock budget of the training loop: at the first step past it the run evaluates, saves "
                          "and stops (the best evaluated model is still the one kept); keeps a recipe inside its budget "
                          "on a larger dataset"},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "train into a non-empty output_dir that holds no run of this recipe (files of the same "
                          "names are replaced; nothing else is deleted)"},
    )

    def __post_init__(self) -> None:
        if not self.metric_ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.metric_ks):
            raise ConfigError(f"metric_ks must be a list of positive integers, got {self.metric_ks!r}")
        if self.generation_num_beams is None:
            self.generation_num_beams = derived_num_beams(self.metric_ks)
        if self.generation_num_beams < max(self.metric_ks):
            raise ConfigError(
                f"metric_ks {self.metric_ks} need top-{max(self.metric_ks)} lists, more than "
                f"generation_num_beams={self.generation_num_beams} beams can give"
            )
        if self.eval_max_users is not None and self.eval_max_users < 1:
            raise ConfigError(f"eval_max_users must be >= 1, got {self.eval_max_users}")
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ConfigError(f"max_train_minutes must be > 0, got {self.max_train_minutes}")
        if self.metric_for_best_model is None and self._selects_a_best_model():
            # Trainer's default, "loss", is a metric the ranking evaluation never produces
            self.metric_for_best_model = f"ndcg@{max(self.metric_ks)}"
        super().__post_init__()

    def _selects_a_best_model(self) -> bool:
        """Whether Trainer will look up ``metric_for_best_model`` in the evaluation's metrics."""
        value = lambda x: str(getattr(x, "value", x))  # noqa: E731 (enum or plain string)
        return bool(self.load_best_model_at_end) or value(self.save_strategy) == "best" or value(
            self.lr_scheduler_type
        ) in ("reduce_lr_on_plateau", "greedy")
