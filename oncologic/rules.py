"""Rule tags in the encodings: ``%@rule``, ``%@text``, ``%@ref`` (no clingo needed).

A tagged rule looks like::

    %@rule admin.initial
    %@text "{A:adm} is the initial service: {L} ranks highest ..."
    %@ref "CPT facility hierarchy (domain-rules 3.6)"
    charge(E,k(1,G,0,C,0),C,1,A) :- initial_basis(E,G,A,hierarchy), ...

The id is stable API (``family.name``). The text is a template over the rule's variables,
rendered by :mod:`oncologic.explain`; ``{A:adm}`` names a format (see ``explain.FORMATS``).
The tag block applies to the first rule after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TAG = re.compile(r"^\s*%@(rule|text|ref)\s+(.*?)\s*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{([A-Z][A-Za-z0-9_']*(?:,[A-Z][A-Za-z0-9_']*)*)(?::([a-z]+))?\}")


@dataclass(frozen=True)
class RuleTag:
    id: str
    text: str
    ref: str
    file: str
    line: int  # line of the rule the tag applies to (1-based)

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def placeholders(self) -> list[tuple[list[str], str]]:
        return [(m.group(1).split(","), m.group(2) or "") for m in _PLACEHOLDER.finditer(self.text)]


class TagError(ValueError):
    pass


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_tags(path: Path, display: str | None = None) -> list[RuleTag]:
    """All tags of one .lp file, each bound to the line of the rule that follows it."""
    name = display or str(path)
    tags: list[RuleTag] = []
    pending: dict[str, str] = {}
    pending_line = 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _TAG.match(raw)
        if match:
            key, value = match.group(1), _unquote(match.group(2))
            if key == "rule":
                if pending:
                    raise TagError(f"{name}:{pending_line}: %@rule {pending.get('rule')} is not followed by a rule")
                if not _ID.match(value):
                    raise TagError(f"{name}:{lineno}: rule id {value!r} must look like family.name")
                pending = {"rule": value}
                pending_line = lineno
            else:
                if not pending:
                    raise TagError(f"{name}:{lineno}: %@{key} without a preceding %@rule")
                pending[key] = value
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("%"):
            continue
        if pending:
            if "text" not in pending:
                raise TagError(f"{name}:{pending_line}: rule {pending['rule']} has no %@text")
            tags.append(RuleTag(pending["rule"], pending["text"], pending.get("ref", ""), name, lineno))
            pending = {}
    if pending:
        raise TagError(f"{name}:{pending_line}: %@rule {pending['rule']} is not followed by a rule")
    return tags
