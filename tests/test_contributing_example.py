"""The "Adding a new graph layer" example in CONTRIBUTING.md runs as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from gcnretrieval.encoders import ENCODERS, available_encoders, build_encoder

CONTRIBUTING = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


def example_code() -> str:
    text = CONTRIBUTING.read_text(encoding="utf-8")
    section = text.split("## Adding a new graph layer", 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the section should hold exactly one python block"
    return blocks[0]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Run against a copy of the encoder table, restored afterwards, so the example's
    encoder does not leak into other tests (the contract tests are parametrised over
    ``available_encoders()`` at collection time, before any test body runs)."""
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))
    before = set(available_encoders())
    yield before
    assert set(available_encoders()) - before  # the example did register something


def test_example_runs_verbatim_and_registers_its_encoder(scratch_registry, capsys):
    code = example_code()
    assert 15 <= len(code.strip().splitlines()) <= 30
    names = re.findall(r'@register_encoder\("([^"]+)"\)', code)
    assert len(names) == 1 and names[0] not in scratch_registry
    namespace: dict = {"__name__": "contributing_example"}
    exec(compile(code, str(CONTRIBUTING), "exec"), namespace)
    assert names[0] in available_encoders()
    assert capsys.readouterr().out.strip() == "SAGE(300, 64, num_layers=2)"
    encoder = build_encoder(names[0], 4, 2, num_layers=1)
    assert type(encoder).__name__ == "SAGE"


def test_example_encoder_is_gone_afterwards():
    assert "sage" not in available_encoders()
