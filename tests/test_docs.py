"""The docs cannot rot silently: every cited file, section and name exists.

- every ``docs/NAME.md §N`` cited anywhere in the tracked sources (docstrings, comments,
  docs, the README) names a document with a numbered section ``## N.``;
- every bare ``§N`` inside a document names one of its own sections;
- every repository path a document cites (``shared/ipfs/car.py``, ``node/runtime/``), and
  every ``.py`` path a Python file cites, exists;
- every row of docs/where.md names a file that defines each of the names in the row;
- nothing cites the design notes given to the team by section, which are not part of the
  repository.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
#: Top-level folders a cited path may start with (a path outside them is someone else's).
TOP = ("bench", "client", "contracts", "docker", "docs", "node", "shared", "tests")
# A path may be a glob (`shared/catalog/manifests/tiny-*.json`): then something must match.
PATH = re.compile(r"(?<![\w./~<>{}$-])((?:" + "|".join(TOP) + r")/[A-Za-z0-9_.*/-]*[A-Za-z0-9_/])")
PY_PATH = re.compile(r"(?<![\w./~<>{}$-])((?:" + "|".join(TOP) + r")/[A-Za-z0-9_./-]*\.py)\b")
CITATION = re.compile(r"docs/([a-z_-]+)\.md,? §(\d+)")
SECTION = re.compile(r"^## (\d+)\. ", re.MULTILINE)
OWN_SECTION = re.compile(r"(?<![\w.])§(\d+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
#: The old citation form, built so this file does not match itself.
OLD_CITATION = "DESIGN" + " §"
#: The same in JSON with non-ASCII escaped (the committed schemas).
OLD_CITATION_JSON = "DESIGN" + " \\u00a7"
SUFFIXES = (".py", ".md", ".sol", ".toml", ".json", ".sh", ".mjs", ".cfg", ".txt")


@cache
def tracked_files() -> tuple[Path, ...]:
    """Tracked text files plus untracked ones not ignored (a new doc counts before commit)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [REPO / name for name in out]
    return tuple(f for f in files if f.is_file() and (f.suffix in SUFFIXES or f.name == "Makefile"))


def documents() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def sections(doc: Path) -> set[int]:
    return {int(n) for n in SECTION.findall(doc.read_text(encoding="utf-8"))}


def test_docs_exist() -> None:
    names = {doc.name for doc in documents()}
    assert {"protocol.md", "architecture.md", "where.md"} <= names


def test_every_section_citation_names_an_existing_section() -> None:
    missing = []
    for path in tracked_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            doc = DOCS / f"{match.group(1)}.md"
            number = int(match.group(2))
            if not doc.is_file() or number not in sections(doc):
                missing.append(f"{path.relative_to(REPO)}: {match.group(0)}")
    assert not missing, "citations of missing sections:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", documents(), ids=lambda d: d.name)
def test_sections_are_numbered_in_order_and_cited_within(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    numbers = [int(n) for n in SECTION.findall(text)]
    assert numbers == list(range(1, len(numbers) + 1)), f"{doc.name}: sections {numbers}"
    # Bare §N in a document means its own section N (other documents are cited by name).
    stripped = CITATION.sub("", text)
    cited = {int(n) for n in OWN_SECTION.findall(stripped)}
    assert cited <= set(numbers), f"{doc.name} cites missing sections {cited - set(numbers)}"


def _missing_paths(path: Path, pattern: re.Pattern[str]) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [
        f"{path.relative_to(REPO)}: {cited}"
        for cited in sorted(set(pattern.findall(text)))
        if not ((REPO / cited).exists() or ("*" in cited and any(REPO.glob(cited))))
    ]


def test_every_path_a_document_cites_exists() -> None:
    missing: list[str] = []
    for doc in [*documents(), REPO / "CONTRIBUTING.md"]:
        missing += _missing_paths(doc, PATH)
        for link in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" not in link and not (doc.parent / link).exists():
                missing.append(f"{doc.relative_to(REPO)}: link {link}")
    assert not missing, "cited paths that do not exist:\n" + "\n".join(missing)


def test_every_python_path_a_source_file_cites_exists() -> None:
    missing: list[str] = []
    for path in tracked_files():
        if path.suffix == ".py":
            missing += _missing_paths(path, PY_PATH)
    assert not missing, "cited .py paths that do not exist:\n" + "\n".join(missing)


def _defines(text: str, name: str, solidity: bool) -> bool:
    word = re.escape(name)
    if solidity:
        return re.search(rf"\b(function|event|error|struct|enum) {word}\b", text) is not None
    return (
        re.search(rf"^\s*(async def|def|class) {word}\b", text, re.MULTILINE) is not None
        or re.search(rf"^{word}\s*[:=]", text, re.MULTILINE) is not None
    )


def where_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in (DOCS / "where.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        names = re.findall(r"`([^`]+)`", cells[2])
        rows.append((cells[1].strip("`"), names))
    return rows


def test_where_map_names_real_files_and_names() -> None:
    rows = where_rows()
    assert len(rows) > 50
    wrong: list[str] = []
    for file, names in rows:
        path = REPO / file
        if not path.is_file():
            wrong.append(f"{file}: no such file")
            continue
        text = path.read_text(encoding="utf-8")
        for name in names:
            # `Class.method`: the class and the method are both defined in the file.
            if not all(_defines(text, part, path.suffix == ".sol") for part in name.split(".")):
                wrong.append(f"{file}: {name} is not defined there")
    assert not wrong, "docs/where.md is out of date:\n" + "\n".join(wrong)


def test_nothing_cites_the_old_design_notes() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path in tracked_files()
        if OLD_CITATION in path.read_text(encoding="utf-8", errors="replace")
        or OLD_CITATION_JSON in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not stale, "cite docs/protocol.md or docs/architecture.md instead:\n" + "\n".join(stale)
