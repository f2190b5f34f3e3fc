"""Turn raw images, texts and labels into the project's dataset layout (``gcnretrieval prepare``)."""
from gcnretrieval.preparation.common import (ImageOptions, RawPairs, default_num_test, split_indices,
                                             write_prepared_dataset)
from gcnretrieval.preparation.folder import prepare_folder, read_folder
from gcnretrieval.preparation.mirflickr import prepare_mirflickr, read_mirflickr
from gcnretrieval.preparation.mscoco import prepare_mscoco, read_mscoco
from gcnretrieval.preparation.nuswide import prepare_nuswide, read_nuswide

__all__ = [
    "ImageOptions",
    "RawPairs",
    "default_num_test",
    "prepare_folder",
    "prepare_mirflickr",
    "prepare_mscoco",
    "prepare_nuswide",
    "read_folder",
    "read_mirflickr",
    "read_mscoco",
    "read_nuswide",
    "split_indices",
    "write_prepared_dataset",
]
