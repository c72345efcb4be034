"""Recommender model families, each a plug-in folder registered in :mod:`hf_genrec.models.registry`.

Adding a family: a folder with ``configuration_*.py``, ``modeling_*.py``, ``processing_*.py`` and a
``family.py`` that calls ``register_family``, plus its name on the import line below.
"""

from . import colarec, rpg, sasrec, tiger  # noqa: F401  (each family registers itself)
from .registry import FamilyComponents, ModelFamily, family_names, family_of_model_type, get_family

__all__ = ["FamilyComponents", "ModelFamily", "family_names", "family_of_model_type", "get_family"]
