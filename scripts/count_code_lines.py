"""Count the code lines of the application layer: lines holding a code token, without
docstrings, comments and blank lines (physical lines beside them).

    python scripts/count_code_lines.py            # the layer, file by file, and the totals
    python scripts/count_code_lines.py --limit 2500 --longest 5
"""
from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gcnretrieval"
#: the application layer: what turns a recipe into run directories and experiments
LAYER = ("runner.py", "config.py", "options.py", "evaluation.py", "checks.py", "files.py", "cpu.py",
         "formatting.py", "experiments", "training")
_LAYOUT = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)


def layer_files() -> list[Path]:
    """The layer's modules, in order."""
    files: list[Path] = []
    for name in LAYER:
        path = PACKAGE / name
        files += sorted(path.glob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    return files


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of the module's, classes' and functions' docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(source: str) -> int:
    """Lines holding at least one code token, docstrings left out."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _LAYOUT:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstring_lines(ast.parse(source)))


def longest_functions(path: Path, source: str) -> list[tuple[int, str]]:
    """``(physical lines, "file:function")`` of every function of a module."""
    return [(node.end_lineno - node.lineno + 1, f"{path.relative_to(PACKAGE.parent)}:{node.name}")
            for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="exit 1 when the code lines exceed this")
    parser.add_argument("--longest", type=int, default=3, help="list this many longest functions")
    args = parser.parse_args()
    code = physical = 0
    functions: list[tuple[int, str]] = []
    for path in layer_files():
        source = path.read_text(encoding="utf-8")
        lines, count = len(source.splitlines()), code_lines(source)
        code, physical = code + count, physical + lines
        functions += longest_functions(path, source)
        print(f"{count:6d} {lines:6d}  {path.relative_to(PACKAGE.parent)}")
    print(f"{code:6d} {physical:6d}  total (code lines, physical lines)")
    for length, name in sorted(functions, reverse=True)[:args.longest]:
        print(f"longest function: {name}, {length} lines")
    return int(args.limit is not None and code > args.limit)


if __name__ == "__main__":
    raise SystemExit(main())
