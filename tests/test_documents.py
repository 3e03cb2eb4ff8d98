"""The repository stands alone: no tracked file points outside it or to an issue tracker, and every pointer to one of
its own documents (``docs/<name>.md#<section>``) names a document and a section that exist."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not match itself.
OUTSIDE = [
    ("a folder beside the repository", re.compile(re.escape("../" + "shared"))),
    ("a design brief outside the repository", re.compile(re.escape("DESIGN" + ".md"))),
    ("a style guide outside the repository", re.compile(re.escape("STYLE" + ".md"))),
    ("an issue number", re.compile(r"\bissues? #?[0-9]", re.IGNORECASE)),
]

BEING_FIXED: list[str] = []

# Documents that other links may name before they are written.
PENDING_DOCUMENTS: set[str] = set()

DOCUMENT_LINK = re.compile(r"(?<![\w/.-])docs/([\w-]+\.md)(?:#([\w-]+))?")
RELATIVE_LINK = re.compile(r"\]\(((?:\.\./)*(?:docs/)?[\w-]+\.md)(?:#([\w-]+))?\)")


def tracked_text_files() -> dict[str, str]:
    """Every file git tracks (or would, untracked but not ignored) that decodes as UTF-8 text, by path."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the tracked files")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    texts = {}
    for name in sorted(set(filter(None, listed.split("\0")))):
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def being_fixed(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in BEING_FIXED)


def outside_references(texts: dict[str, str]) -> list[str]:
    found = []
    for name, text in texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            found += [f"{name}:{number}: {what}: {line.strip()}" for what, pattern in OUTSIDE if pattern.search(line)]
    return found


def test_no_file_points_outside_the_repository_or_to_an_issue():
    texts = tracked_text_files()
    found = [line for line in outside_references(texts) if not being_fixed(line.split(":", 1)[0])]
    assert found == [], "point to docs/ or a public paper instead:\n" + "\n".join(found)


def test_the_checker_finds_each_kind_of_reference():
    texts = {"a.py": "see " + "DESIGN" + ".md §1", "b.md": "the " + "../" + "shared folder",
             "c.py": "# " + "STYLE" + ".md rule 3", "d.md": "as Is" + "sue 5 measured",
             "e.md": "docs/design.md, no issue"}
    assert [line.split(":", 1)[0] for line in outside_references(texts)] == ["a.py", "b.md", "c.py", "d.md"]


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_links_to_the_documents_name_existing_sections():
    broken = []
    for name, text in tracked_text_files().items():
        here = (ROOT / name).parent
        links = [(ROOT / "docs" / document, section) for document, section in DOCUMENT_LINK.findall(text)]
        if name.endswith(".md"):
            links += [((here / target).resolve(), section) for target, section in RELATIVE_LINK.findall(text)]
        for path, section in links:
            relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if relative in PENDING_DOCUMENTS and not path.exists():
                continue
            if not path.is_file():
                broken.append(f"{name}: {relative} does not exist")
            elif section and section not in anchors(path):
                broken.append(f"{name}: {relative} has no section #{section}")
    assert broken == [], "\n".join(broken)
