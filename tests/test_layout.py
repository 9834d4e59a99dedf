"""The package's layout: wings by pipeline stage, imports only down the wing order, no circle.

The wing order lives here, once (``WINGS``); ``docs/development.md`` opens with the same list,
and a test below holds the two together.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "exporter"

WINGS = (
    "core",
    "simulators",
    "upstream",
    "providers",
    "config",
    "polling",
    "exposition",
    "web",
    "diagnose",
    "cli",
)
"""The wings from the bottom up: a module may import its own wing and the wings listed before
it, never one listed after it. ``simulators`` (the fake providers' servers) uses none."""

FACES = ("exporter/__init__.py", "exporter/__main__.py")
"""The package's face, outside the wings: ``__version__``, and ``python -m exporter``."""


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package below ``root``, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's modules that module ``name`` imports, anywhere in it (lazy imports too),
    with the line; ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, node.lineno, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                if child in known:
                    yield child, node.lineno
                else:
                    yield from _known(base, node.lineno, known)


def _known(dotted: str, line: int, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """``dotted`` or its nearest enclosing module of the package, if any."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            yield candidate, line
            return
        parts.pop()


def wing_of(module: str) -> str | None:
    """The wing a module belongs to (``None`` for the package's face)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else None


def graph(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Module -> the package's modules it imports (with the line), self-imports left out."""
    known = modules(root)
    return {
        name: [(other, line) for other, line in imports(name, path, known) if other != name]
        for name, path in known.items()
    }


def upward(root: Path, wings: tuple[str, ...] = WINGS) -> list[str]:
    """Every import that runs back up the wing order, or out of the wings, said in words."""
    rank = {wing: index for index, wing in enumerate(wings)}
    found = []
    for module, targets in graph(root).items():
        wing = wing_of(module)
        if wing is None:
            continue
        for other, line in targets:
            theirs = wing_of(other)
            if theirs is None:
                continue  # the package face: `from exporter import __version__`
            if theirs not in rank or wing not in rank:
                found.append(f"{module}:{line} imports {other}: {theirs or wing} is no wing")
            elif rank[theirs] > rank[wing]:
                found.append(f"{module}:{line} imports {other}: {wing} is below {theirs}")
    return found


def circles(root: Path) -> list[list[str]]:
    """Every group of modules that import each other, directly or around a loop (Tarjan)."""
    edges = {module: sorted({o for o, _ in targets}) for module, targets in graph(root).items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_every_module_sits_in_a_wing() -> None:
    """Each module of the package is in one of the wings (the face aside), and each wing is
    there: `ls exporter/` reads as the pipeline."""
    outside = sorted(
        str(path.relative_to(ROOT))
        for name, path in modules(ROOT).items()
        if wing_of(name) not in WINGS and str(path.relative_to(ROOT)) not in FACES
    )
    assert [] == outside
    present = sorted(p.name for p in (ROOT / PACKAGE).iterdir() if (p / "__init__.py").exists())
    assert sorted(WINGS) == present


def test_imports_only_go_down_the_wings() -> None:
    """No module imports a module of a wing above its own (lazy imports included)."""
    assert [] == upward(ROOT)


def test_no_circle_of_imports() -> None:
    """No two modules import each other, directly or around a loop."""
    assert [] == circles(ROOT)


def test_simulators_know_nothing_of_the_exporter() -> None:
    """The fake providers' servers import none of the exporter's own code: they speak only the
    wire format, so a test against them checks the exporter and not a shared mistake."""
    used = {
        other
        for module, targets in graph(ROOT).items()
        if wing_of(module) == "simulators"
        for other, _ in targets
        if wing_of(other) != "simulators"
    }
    assert set() == used


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checks_catch_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    """On a made-up package, an import back up the wings and a three-module loop (one of them
    lazy, one relative) are both found, with the place and the modules named."""
    _write(
        tmp_path,
        {
            "exporter/__init__.py": "",
            "exporter/core/__init__.py": "",
            "exporter/core/a.py": "def f():\n    from exporter.web.b import x\n",
            "exporter/web/__init__.py": "",
            "exporter/web/b.py": "from .c import y\n",
            "exporter/web/c.py": "from exporter.core import a\n",
        },
    )
    assert ["exporter.core.a:2 imports exporter.web.b: core is below web"] == upward(
        tmp_path, ("core", "web")
    )
    assert [["exporter.core.a", "exporter.web.b", "exporter.web.c"]] == circles(tmp_path)


def test_development_doc_opens_with_the_wings_in_order() -> None:
    """docs/development.md opens with the wings, top down, one line each, and the rule."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\d+\. `exporter/(\w+)/`", text, flags=re.M)
    assert list(reversed(WINGS)) == listed
    assert "never back up" in text.split("\n## ", 1)[0]
