"""Binary bag-of-words text features with scikit-learn's ``CountVectorizer(binary=True)``.

Two vocabularies:

- a fixed tag list, the standard text features of the benchmarks: MIRFlickr's
  ``TagList1386.txt`` (1,386 tags) and NUS-WIDE's ``TagList1k.txt`` (1,000 tags). Tag
  texts are split on a separator (a comma for MIRFlickr's ``all_tags.txt``), never by a
  word regex: tags such as ``360°`` or ``geo:tool=gmif`` are single entries, and a tag
  containing a space or an underscore stays one tag. Tags outside the list are ignored.
- a vocabulary learned from training texts (captions): the ``top_k`` most frequent
  lower-cased words (scikit-learn's default word tokenizer, English stop words
  removed), as used for MS-COCO captions.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from gcnretrieval.defaults import DEFAULT_TOP_K
from gcnretrieval.errors import DataError
from gcnretrieval.readers import read_text

__all__ = ["BagOfWords", "read_vocabulary", "split_tags"]


def read_vocabulary(path: str | Path) -> list[str]:
    """One entry per non-empty line, surrounding whitespace (and a trailing ``\\r``) stripped.

    Raises:
        DataError: the file is missing, empty or lists an entry twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"vocabulary file {path} does not exist; give the tag list (e.g. TagList1386.txt)")
    text = read_text(path, "vocabulary file", "give a UTF-8 text file with one tag per line")
    words = [line.strip() for line in text.splitlines()]
    words = [w for w in words if w]
    if not words:
        raise DataError(f"vocabulary file {path} is empty; it needs one tag per line")
    seen: set[str] = set()
    for word in words:
        if word in seen:
            raise DataError(f"vocabulary file {path} lists '{word}' twice; keep one line per tag")
        seen.add(word)
    return words


def split_tags(text: str, separator: str | None = ",") -> list[str]:
    """Split a tag string on ``separator`` (``None``: on whitespace), stripping each tag."""
    parts = text.split(separator) if separator is not None else text.split()
    return [part.strip() for part in parts if part.strip()]


class BagOfWords:
    """Binary bag-of-words features over a fixed or learned vocabulary.

    Args:
        vocabulary: the fixed word/tag list, in column order (default ``None``: learn it
            with :meth:`fit`).
        separator: for a fixed tag list, the separator between tags in a text (default
            ``","``; ``None`` splits on whitespace).
        top_k: for a learned vocabulary, the number of most frequent words kept (default
            ``2000``).
        stop_words: for a learned vocabulary, ``"english"`` (default) or ``None``.

    Shapes:
        - input: ``n`` texts
        - output: ``(n, V)`` float32 with values 0 and 1
    """

    def __init__(self, vocabulary: Sequence[str] | None = None, *, separator: str | None = ",",
                 top_k: int = DEFAULT_TOP_K, stop_words: str | None = "english") -> None:
        self.fixed = vocabulary is not None
        if vocabulary is not None:
            tokenizer: Callable[[str], list[str]] = partial(split_tags, separator=separator)
            self._vectorizer = CountVectorizer(binary=True, vocabulary=list(vocabulary), tokenizer=tokenizer,
                                               token_pattern=None, lowercase=False)
        else:
            if top_k < 1:
                raise ValueError("top_k must be at least 1")
            self._vectorizer = CountVectorizer(binary=True, max_features=top_k, stop_words=stop_words, lowercase=True)
        self._fitted = False

    def fit(self, texts: Sequence[str]) -> BagOfWords:
        """Learn the vocabulary from ``texts`` (a fixed vocabulary is kept as given)."""
        if self.fixed:
            self._vectorizer.fit([])
        else:
            try:
                self._vectorizer.fit(list(texts))
            except ValueError as err:  # empty vocabulary
                raise DataError(f"cannot learn a vocabulary from the training texts ({err}); check that the texts are not empty") from None
        self._fitted = True
        return self

    @property
    def vocabulary(self) -> list[str]:
        """The words, in column order."""
        if not self._fitted and self.fixed:
            self.fit([])
        if not self._fitted:
            raise RuntimeError("call fit() before reading the learned vocabulary")
        return [str(w) for w in self._vectorizer.get_feature_names_out()]

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Binary features of ``texts``, ``(len(texts), len(vocabulary))`` float32."""
        if not self._fitted:
            if not self.fixed:
                raise RuntimeError("call fit() before transform() with a learned vocabulary")
            self.fit([])
        return self._vectorizer.transform(list(texts)).toarray().astype(np.float32)
