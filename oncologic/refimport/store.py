"""Where imported reference data lives, and the manifest that records it.

A data folder holds one fact file per table version (``<kind>_<version>[_<part>].lp``) and a
``manifest.json`` with each file's source (name, SHA-256, size, rows read), effective dates, fact
counts, skips and notes, plus the HCPCS codes the tables know. The shipped facts of the package are
one such folder; a user's imports go to another (``--data-dir``, default a per-user folder), layered
over the shipped one: a user's file of the same name replaces the shipped file, so an upgrade of the
package never drops a quarter the user imported.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .core import Rejected, Table, sha256_bytes, ymd_text
from .readers import Options
from .sniff import read_any

GENERATOR = "oncologic data import"
_CODE_ARG = re.compile(r'^(?:hcpcs_unit|hcpcs_unit_unparsed|hcpcs_unit_descriptor|asp_limit|ndc|ndc_unparsed|hcpcs_category)\((?:"[^"]*",)?'
                       r'(?:"[0-9]{11}",)?"([A-Z0-9]{5})"', re.M)


def default_data_dir() -> Path:
    env = os.environ.get("ONCOLOGIC_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "oncologic"


def read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        return {"generator": GENERATOR, "tables": {}, "known_hcpcs": []}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_manifest(folder: Path, manifest: dict) -> None:
    codes: set[str] = set()
    for name in manifest["tables"]:
        path = folder / name
        if path.is_file():
            codes.update(_CODE_ARG.findall(path.read_text(encoding="utf-8")))
    manifest["known_hcpcs"] = sorted(codes)
    manifest["tables"] = dict(sorted(manifest["tables"].items()))
    text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    _write_atomic(folder / "manifest.json", text.encode("utf-8"))


def entry(t: Table, source: dict, content: bytes) -> dict:
    counts = t.counts()
    return {
        "kind": t.kind, "version": t.version, "part": t.part, "title": t.title,
        "effective_from": ymd_text(t.start), "effective_to": ymd_text(t.end),
        "sha256": sha256_bytes(content), "source": source,
        "facts_written": counts, "facts_total": sum(counts.values()),
        "skipped": dict(sorted(t.skipped.items())), "skipped_total": sum(t.skipped.values()),
        "notes": list(t.notes),
    }


def parse_file(path: Path, opts: Options, display: str | None = None) -> tuple[list[Table], dict]:
    """Read and convert one file (nothing is written); raises Rejected."""
    name = display or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Rejected(name, None, f"cannot read: {exc.strerror}") from None
    tables = read_any(data, name, opts, lambda test: _sibling(path, test))
    source = {"file": name, "sha256": sha256_bytes(data), "bytes": len(data)}
    return tables, source


def _sibling(path: Path, test) -> str | None:
    """The text of a small file in the same folder for which ``test(text)`` holds."""
    for other in sorted(path.parent.iterdir()):
        if other != path and other.is_file() and other.stat().st_size < 1_000_000:
            try:
                text = other.read_bytes().decode("latin-1")
            except OSError:
                continue
            if test(text):
                return text
    return None


def import_tables(folder: Path, parsed: list[tuple[list[Table], dict]]) -> list[dict]:
    """Write the parsed tables into ``folder`` and record them; returns one result per table
    (``status``: imported, unchanged or replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    results = []
    for tables, source in parsed:
        for t in tables:
            src = dict(source, rows_read=t.rows_read)
            content = t.render(src)
            old = manifest["tables"].get(t.name)
            new = entry(t, src, content)
            if old is not None and old.get("sha256") == new["sha256"] and (folder / t.name).is_file():
                status = "unchanged"
            else:
                status = "replaced" if old is not None else "imported"
                _write_atomic(folder / t.name, content)
                if old is not None and old["source"]["sha256"] != src["sha256"]:
                    new["replaces"] = {"file": old["source"]["file"], "sha256": old["source"]["sha256"]}
                manifest["tables"][t.name] = new
            results.append({"file": t.name, "status": status, "kind": t.kind, "version": t.version,
                            "source": source["file"], "facts": new["facts_total"]})
    write_manifest(folder, manifest)
    return results


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders walked (sorted), skipping hidden files and READMEs/notes (.md)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".") and q.suffix != ".md")
        else:
            out.append(p)
    return out


def import_paths(paths: list[Path], folder: Path, opts: Options) -> tuple[list[dict], list[Rejected]]:
    """Import every file; a rejected file is reported and leaves the data folder as it was."""
    parsed, rejected = [], []
    for path in expand(paths):
        try:
            parsed.append(parse_file(path, opts))
        except Rejected as exc:
            rejected.append(exc)
    results = import_tables(folder, parsed) if parsed else []
    if results:
        from .. import refdata

        refdata.reset()  # the next solve of this process reads the new files
    return results, rejected


def verify(folder: Path) -> list[str]:
    """Problems: a fact file whose hash or fact counts no longer match the manifest, or is missing."""
    problems = []
    manifest = read_manifest(folder)
    for name, e in sorted(manifest["tables"].items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing (listed in the manifest)")
            continue
        data = path.read_bytes()
        if sha256_bytes(data) != e["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest (edited by hand?)")
        counts: dict[str, int] = {}
        for line in data.decode("utf-8").splitlines():
            m = re.match(r"([a-z_0-9]+)\(", line)
            if m:
                sig = f"{m.group(1)}/{_arity(line[m.end() - 1:])}"
                counts[sig] = counts.get(sig, 0) + 1
        want = {k: v for k, v in e["facts_written"].items() if v}
        if counts != want:
            problems.append(f"{path}: fact counts {counts} differ from the manifest {want}")
    return problems


def _arity(args: str) -> int:
    """Number of top-level arguments of '(a,"b,c",f(x,y)).'"""
    depth, n, quoted, esc = 0, 1, False, False
    for ch in args:
        if quoted:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        elif ch == "," and depth == 1:
            n += 1
    return n
