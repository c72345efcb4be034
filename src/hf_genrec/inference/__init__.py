"""Using a saved model folder: load it (model + processor + recipe), evaluate it, recommend with it."""

from .saved_models import SavedModel, evaluate_saved_model, family_of_dir, load_saved_model, recommend_with_saved_model

__all__ = ["SavedModel", "evaluate_saved_model", "family_of_dir", "load_saved_model", "recommend_with_saved_model"]
