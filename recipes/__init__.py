"""Recipes shipped with gcnretrieval (installed as ``gcnretrieval.recipes``); see README.md."""
