"""Registry and user-error plumbing."""
from __future__ import annotations

import pytest

from gcnretrieval.errors import GcnRetrievalError, UnknownNameError, did_you_mean
from gcnretrieval.registry import Registry


def test_register_get_and_names():
    registry = Registry("widget")

    @registry.register("Alpha")
    class Alpha:
        pass

    assert registry.get("alpha") is Alpha
    assert registry.get("ALPHA") is Alpha
    assert registry.names() == ["alpha"]
    assert "alpha" in registry and "beta" not in registry


def test_unknown_name_suggests_the_closest_and_lists_choices():
    registry = Registry("widget")
    for name in ("gcn", "gat", "l2gcn"):
        registry.register(name)(type(name, (), {}))
    with pytest.raises(UnknownNameError) as info:
        registry.get("gcm")
    message = str(info.value)
    assert message == "unknown widget 'gcm' — did you mean 'gcn'? choices: gat, gcn, l2gcn"
    assert isinstance(info.value, GcnRetrievalError)


def test_did_you_mean_without_a_close_match():
    assert did_you_mean("encoder", "zzz", ["gcn"]) == "unknown encoder 'zzz'; choices: gcn"


def test_registering_a_different_object_twice_is_refused():
    registry = Registry("widget")
    registry.register("a")(int)
    registry.register("a")(int)  # same object again is harmless
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(float)
