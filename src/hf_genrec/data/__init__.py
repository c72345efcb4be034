"""Benchmark data: strict readers, item text, and the evaluation protocols as `datasets` objects."""

from .catalogue import ItemCatalogue, ItemTextTemplate
from .keys import KeyMap
from .paths import DATA_DIR_ENV, default_data_dir, resolve_data_dir
from .protocols import COLAREC, LEAVE_ONE_OUT, describe_protocol
from .rec_dataset import KNOWN_DATASETS, RecDataset, load_rec_dataset

__all__ = [
    "COLAREC",
    "DATA_DIR_ENV",
    "KNOWN_DATASETS",
    "LEAVE_ONE_OUT",
    "ItemCatalogue",
    "ItemTextTemplate",
    "KeyMap",
    "RecDataset",
    "default_data_dir",
    "describe_protocol",
    "load_rec_dataset",
    "resolve_data_dir",
]
