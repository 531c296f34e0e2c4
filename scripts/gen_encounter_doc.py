"""Keep the field tables of docs/encounter-format.md equal to `oncologic schema`.

    python scripts/gen_encounter_doc.py          # rewrite the tables in place
    python scripts/gen_encounter_doc.py --check  # exit 1 when a table differs from the schema

Each object of the contract has its own section in docs/encounter-format.md, and in it a table
between ``<!-- fields NAME -->`` and ``<!-- /fields -->``. The name, type and required/default
columns come from the JSON Schema that ``oncologic schema`` prints; the meaning column is written
by hand and kept by field name when the table is regenerated (a new field gets an empty meaning,
which tests/test_docs.py reports until someone writes it). An object that has no section yet is
reported: add a section with an empty marker pair and run this script.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "encounter-format.md"
MARK = re.compile(r"<!-- fields (\w+) -->\n(.*?)<!-- /fields -->", re.S)
HEAD = "| field | type | required | meaning |\n|---|---|---|---|\n"


def schema() -> dict:
    """The JSON Schema exactly as `oncologic schema` prints it."""
    sys.path.insert(0, str(ROOT))
    from click.testing import CliRunner

    from oncologic.cli import main

    res = CliRunner().invoke(main, ["schema"], catch_exceptions=False)
    return json.loads(res.output)


def objects(doc: dict) -> dict[str, dict]:
    """object name -> its schema (Encounter, Claim and every object they contain)."""
    out: dict[str, dict] = {}
    for top, body in doc["$defs"].items():
        out[top] = body
        out.update(body.get("$defs", {}))
    return out


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def type_text(prop: dict) -> str:
    """A short reading of a property's schema (``list of [Drug](#drug)``, ``one of: `a`, `b```)."""
    if "$ref" in prop:
        return _anchor(prop["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in prop:
        parts = [p for p in prop["anyOf"] if p.get("type") != "null"]
        if len(parts) > 1 and all(p.get("type") in ("number", "string", "integer") for p in parts):
            return "decimal number"
        return " or ".join(type_text(p) for p in parts) or "null"
    if "enum" in prop:
        return "one of: " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type")
    if kind == "array":
        return "list of " + type_text(prop.get("items", {}))
    if kind == "object":
        extra = prop.get("additionalProperties")
        return "mapping of text to " + type_text(extra) if isinstance(extra, dict) else "mapping"
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date":
            return "date (YYYY-MM-DD)"
        return "text, not empty" if prop.get("minLength") == 1 else "text"
    if kind == "integer":
        low = prop.get("minimum", prop.get("exclusiveMinimum"))
        return f"integer >= {low}" if low is not None else "integer"
    if kind == "number":
        return "number >= 0" if prop.get("minimum") == 0 else "number"
    if kind == "boolean":
        return "true or false"
    return kind or "any"


def required_text(name: str, prop: dict, required: list[str]) -> str:
    if name in required:
        return "required"
    if "default" in prop and prop["default"] not in (None, [], {}):
        value = prop["default"]
        return f"default `{json.dumps(value) if not isinstance(value, str) else value}`"
    return "optional"


def rows(obj: dict) -> list[tuple[str, str, str]]:
    """(field, type, required) of every property of ``obj`` in the schema's order. The JSON name
    is used (``from`` of a why, not the Python attribute)."""
    required = obj.get("required", [])
    return [(name, type_text(prop), required_text(name, prop, required)) for name, prop in obj.get("properties", {}).items()]


def _meanings(table: str) -> dict[str, str]:
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            out[cells[0].strip("`")] = "|".join(cells[3:]).strip()
    return out


def render(text: str, doc: dict) -> tuple[str, list[str]]:
    """The document with every field table regenerated, and the problems found (objects of the
    schema without a section, sections of no object, fields without a meaning)."""
    objs = objects(doc)
    problems: list[str] = []
    seen: set[str] = set()

    def table(match: re.Match) -> str:
        name = match.group(1)
        seen.add(name)
        if name not in objs:
            problems.append(f"section {name}: no such object in `oncologic schema`")
            return match.group(0)
        meanings = _meanings(match.group(2))
        body = ""
        for field, kind, req in rows(objs[name]):
            meaning = meanings.get(field, "")
            if not meaning:
                problems.append(f"{name}.{field}: no meaning written")
            body += f"| `{field}` | {kind} | {req} | {meaning} |\n"
        return f"<!-- fields {name} -->\n{HEAD}{body}<!-- /fields -->"

    out = MARK.sub(table, text)
    for name in sorted(set(objs) - seen):
        problems.append(f"object {name} has no section in docs/encounter-format.md (add '<!-- fields {name} -->')")
    return out, problems


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    new, problems = render(text, schema())
    for p in problems:
        print(p, file=sys.stderr)
    if "--check" in argv:
        if new != text:
            print("docs/encounter-format.md differs from `oncologic schema`: run python scripts/gen_encounter_doc.py",
                  file=sys.stderr)
            return 1
        return 1 if problems else 0
    if new != text:
        DOC.write_text(new, encoding="utf-8")
        print("docs/encounter-format.md: field tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
