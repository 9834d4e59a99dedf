"""The README and docs/: every relative link resolves, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 120

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def prose(path: Path) -> str:
    """The Markdown of ``path`` without its fenced code blocks."""
    return FENCE.sub("", path.read_text())


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path`` (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(path)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(f"{slug}-{count}" if count else slug)
    return out


def relative_links(path: Path) -> list[str]:
    """The links of ``path`` that point into the repository (not to a web address)."""
    return [
        link
        for link in LINK.findall(prose(path))
        if not re.match(r"[a-z][a-z0-9+.-]*:", link)  # https:, mailto:, ...
    ]


def test_slugs_follow_github(tmp_path: Path) -> None:
    """The anchor rule matches GitHub's on a heading with code, punctuation and a duplicate."""
    page = tmp_path / "sample.md"
    page.write_text("# Several servers: `/probe`\n## Per-session (opt in)\n## A\n## A\n")
    assert {"several-servers-probe", "per-session-opt-in", "a", "a-1"} == anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link points at an existing file, and at an existing heading if it has #."""
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        if not file.exists():
            broken.append(f"{link}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading #{anchor} in {file.name}")
    assert [] == broken


def test_readme_is_short() -> None:
    """The README is an entry point, not the reference: at most 120 lines."""
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


def test_readme_links_every_docs_page() -> None:
    """Each page of docs/ is reachable from the README."""
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in relative_links(README)}
    assert [] == [page.name for page in PAGES[1:] if page.resolve() not in linked]


def test_readme_shows_the_commands_ci_runs() -> None:
    """The README's commands are the ones CI runs: `make test` (and `make lint`)."""
    ci = (ROOT / ".ci" / "run").read_text()
    readme = README.read_text()
    for command in ("make test", "make lint"):
        assert command in ci
        assert command in readme
