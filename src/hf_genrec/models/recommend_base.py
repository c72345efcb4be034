"""What both ``model.recommend`` flavours share (beam search over IDs, exact scores of every item):
the processor saved beside the model, found from the model alone (``model.load_processor()``), and
one check of the arguments.

Travels with every checkpoint whose model offers ``recommend`` (imported by the modeling files, so
``save_pretrained`` copies it): a user with only transformers and ``trust_remote_code=True`` gets
the same input path as training and evaluation.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from ..errors import InvalidInputError


class SavedProcessorMixin:
    """``load_processor()``: the family's processor (``processor_class``) saved where the model was loaded from."""

    processor_class: ClassVar[type | None] = None

    def load_processor(self, **kwargs: Any) -> Any:
        """The processor saved beside the model (the folder or Hub repo it was loaded from), checked against its config."""
        processor = self.__dict__.get("_genrec_processor")
        if processor is None:
            source = getattr(self, "name_or_path", None)
            if not source or self.processor_class is None:
                raise InvalidInputError(
                    "this model was not loaded from a saved folder or repo: pass processor= (its family's processor)"
                )
            hub_kwargs = {k: v for k, v in kwargs.items() if k != "trust_remote_code"}
            processor = self.processor_class.from_pretrained(source, trust_remote_code=False, **hub_kwargs)
            processor.check_model(self.config)
            self.__dict__["_genrec_processor"] = processor  # not a submodule: plain attribute storage
        return processor


def check_recommend_arguments(
    histories: Sequence[Sequence[int]], k: int, batch_size: int, exclude: Sequence[Sequence[int]] | None, num_items: int,
    num_beams: int | None = None, user_ids: Sequence[int | None] | None = None,
) -> None:
    """InvalidInputError for a non-positive ``k`` / ``batch_size`` / ``num_beams``, ``k`` beyond the beams or the
    catalogue, per-history lists of another length, or an empty history."""
    sizes = [("k", k), ("batch_size", batch_size)] + ([("num_beams", num_beams)] if num_beams is not None else [])
    for name, value in sizes:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    if num_beams is not None and k > num_beams:
        raise InvalidInputError(f"k={k} is larger than num_beams={num_beams}")
    if k > num_items:
        raise InvalidInputError(f"k={k} is larger than the catalogue ({num_items} items)")
    for name, values in (("user ids", user_ids), ("exclude lists", exclude)):
        if values is not None and len(values) != len(histories):
            raise InvalidInputError(f"{len(values)} {name} for {len(histories)} histories")
    for i, history in enumerate(histories):
        if len(history) == 0:
            raise InvalidInputError(f"history {i} is empty: at least one item is needed")


__all__ = ["SavedProcessorMixin", "check_recommend_arguments"]
