"""The project's own plumbing: package list, README commands and CI stay in step."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "gcnretrieval").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found | {"gcnretrieval.graphdata", "gcnretrieval.recipes"} == listed


def test_ci_runs_the_readme_test_command_then_the_avx2_suite():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    commands = lines[lines.index('cd "$(dirname "$0")/.."') + 1:]
    readme = (ROOT / "README.md").read_text()
    assert commands[0].startswith("python3 -m venv .venv") and commands[0] in readme
    assert commands[1:] == ["ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE .venv/bin/python -m pytest -q"]


def test_readme_quickstart_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = quickstart.split("```bash")[1:]
    commands = [block.split("```", 1)[0].strip() for block in blocks]
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
