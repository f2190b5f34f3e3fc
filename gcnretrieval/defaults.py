"""Defaults shared by the library and the command line, written once here (a light module: the CLI
reads them while it builds its options, before torch is imported)."""

__all__ = ["BEST_CHECKPOINT", "CHECKPOINTS", "DEFAULT_DEVICE", "DEFAULT_THRESHOLD", "DEFAULT_TOP_K", "EMBED_BATCH_SIZE",
           "LAST_CHECKPOINT", "MANIFEST"]

#: the label graph's binarisation threshold :math:`t` (edges where :math:`P(j \mid i) \ge t`)
DEFAULT_THRESHOLD = 0.4
#: the size of a bag-of-words vocabulary learned from training texts (its most frequent words)
DEFAULT_TOP_K = 2000
#: a run's checkpoints: the selected epoch's weights, and the resume state of the last epoch
BEST_CHECKPOINT, LAST_CHECKPOINT = "best", "last"
CHECKPOINTS = (BEST_CHECKPOINT, LAST_CHECKPOINT)
#: rows per forward pass when a split or a retrieval database is embedded (no gradient is kept)
EMBED_BATCH_SIZE = 1024
#: the record a prepared (or bundled) dataset folder holds beside its arrays (sources, split, counts), written last
MANIFEST = "manifest.json"
#: where a model runs unless told: CUDA when available, else the CPU
DEFAULT_DEVICE = "auto"
