"""The docs stand alone (issue 17): every relative link of README.md and docs/*.md resolves inside
the repository (files and #anchors), nothing points at the spec folder outside it, every repo path
written in backticks exists, and the contract page's field tables equal `oncologic schema`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            slug = _slug(m.group(1))
            n = 1
            base = slug
            while slug in out:
                slug = f"{base}-{n}"
                n += 1
            out.add(slug)
    return out


def _links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def test_the_pages_have_links_to_check():
    assert sum(len(_links(p)) for p in PAGES) >= 30
    assert (ROOT / "docs" / "encounter-format.md").is_file() and (ROOT / "docs" / "decisions.md").is_file()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if ROOT not in dest.parents and dest != ROOT:
            broken.append(f"{target}: outside the repository")
            continue
        if not dest.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_the_spec_outside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    for bad in ("../shared", "/work/shared", "shared/spec"):
        assert bad not in text, f"{page.name} refers to {bad}: the docs must stand alone"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_in_backticks_exist(page: Path):
    """`docs/x.md`, `encodings/claim/x.lp`, `examples/...`: a path the page names exists."""
    missing = []
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for span in CODE_SPAN.findall(text):
        for word in span.split():
            word = word.rstrip(".,;:)")
            if not re.fullmatch(r"(docs|encodings|examples|scripts|benchmarks|tests|oncologic|facts)/[\w./-]+\.(md|lp|py|yaml|toml|json)", word):
                continue
            if re.search(r"/(?:[A-Z_]+|my_\w+)\.\w+$", word):  # a placeholder: NAME.lp, my_payer.lp
                continue
            if "*" in word or not (ROOT / word).exists():
                missing.append(word)
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def test_contract_tables_equal_oncologic_schema():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_encounter_doc as gen

    doc = ROOT / "docs" / "encounter-format.md"
    text = doc.read_text(encoding="utf-8")
    new, problems = gen.render(text, gen.schema())
    assert not problems, "\n".join(problems)
    assert new == text, "docs/encounter-format.md differs from `oncologic schema`: run python scripts/gen_encounter_doc.py"


def test_contract_tables_would_catch_a_new_field():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_encounter_doc as gen

    schema = gen.schema()
    schema["$defs"]["Encounter"]["$defs"]["Administration"]["properties"]["bedside_note"] = {"type": "string"}
    _new, problems = gen.render((ROOT / "docs" / "encounter-format.md").read_text(encoding="utf-8"), schema)
    assert "Administration.bedside_note: no meaning written" in problems


def test_readme_says_what_clean_means():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\*\*clean\*\* when none of its findings has\s+severity `error`", text)
    assert "Warnings" in text
