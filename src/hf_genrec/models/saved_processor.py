"""The processor saved beside a model, found from the model alone (``model.load_processor()``).

Travels with every checkpoint whose model offers ``recommend`` (imported by the modeling files, so
``save_pretrained`` copies it): a user with only transformers and ``trust_remote_code=True`` gets
the same input path as training and evaluation.
"""

from __future__ import annotations

from typing import Any, ClassVar

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


__all__ = ["SavedProcessorMixin"]
