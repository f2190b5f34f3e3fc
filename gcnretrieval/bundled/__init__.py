"""Small real datasets shipped with the package (package data; see each folder's ATTRIBUTION.md).

Load them with :func:`gcnretrieval.data.load_bundled`.
"""
