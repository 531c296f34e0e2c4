"""Change impact of a rule change: code one corpus under two rule sets and compare the claims.

``oncologic diff CORPUS --base-rules A --rules B`` (see :mod:`oncologic.commands.diff_cmd`). A
side is one of:

* nothing: the standard rules of this installation;
* ``git:REV`` (or any revision git knows, when no such path exists): the ``encodings/`` folder of
  that revision of the repository, extracted with ``git archive``;
* a folder holding ``interface.lp``: a whole encodings folder (a fork of the rules);
* any other folder: a policy package (``--policy DIR``: its rule files, payer lists in subfolders,
  its own switches; a ``cases/`` folder is not loaded) on top of the standard rules;
* one ``.lp`` file: that file on top of the standard rules.

Each side is coded by ``oncologic batch`` in a child process (its own interned symbols, its own
rule cache key), with the reference facts of this installation on both sides, so only the rules
differ. Claims are matched by record number and encounter id; a line is keyed by its code,
modifiers and date, and its units, rule id and money are compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from . import refdata


class DiffError(Exception):
    """A side cannot be prepared (unknown revision, missing folder) or could not be coded."""


@dataclass
class Side:
    label: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


def _git_root() -> Optional[Path]:
    try:
        out = subprocess.run(["git", "-C", str(refdata.ROOT), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _revision_root(rev: str, work: Path) -> Path:
    """A root folder with ``encodings/`` of git revision ``rev`` and this installation's facts."""
    top = _git_root()
    if top is None:
        raise DiffError(f"{rev!r}: not a file or folder, and {refdata.ROOT} is not inside a git repository")
    rel = os.path.relpath(refdata.ENCODINGS, top)
    probe = subprocess.run(["git", "-C", str(top), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise DiffError(f"{rev!r}: no such file, folder or git revision")
    dest = work / f"rev-{probe.stdout.strip()[:12]}"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(top), "archive", "--format=tar", rev, rel], capture_output=True)
    if archive.returncode != 0:
        raise DiffError(f"{rev!r}: git archive of {rel} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    root = dest / "root"
    root.mkdir(exist_ok=True)
    shutil.move(str(dest / rel), str(root / "encodings"))
    (root / "facts").symlink_to(refdata.FACTS.resolve(), target_is_directory=True)
    return root


def _folder_root(folder: Path, work: Path) -> Path:
    root = work / f"enc-{len(list(work.iterdir()))}"
    root.mkdir()
    (root / "encodings").symlink_to(folder.resolve(), target_is_directory=True)
    (root / "facts").symlink_to(refdata.FACTS.resolve(), target_is_directory=True)
    return root


def prepare_side(spec: Optional[str], work: Path, label: str) -> Side:
    """The environment and batch arguments that code under ``spec`` (see the module docstring)."""
    if not spec:
        return Side(f"{label} (standard rules)")
    if spec.startswith("git:"):
        return Side(f"{label} ({spec})", env={"ONCOLOGIC_HOME": str(_revision_root(spec[4:], work))})
    path = Path(spec)
    if path.is_dir():
        if (path / "interface.lp").is_file():
            return Side(f"{label} ({spec}, encodings folder)", env={"ONCOLOGIC_HOME": str(_folder_root(path, work))})
        files = sorted(p for p in path.rglob("*.lp") if "cases" not in p.relative_to(path).parts)
        if not files:
            raise DiffError(f"{spec}: a folder with neither interface.lp nor any .lp rule file")
        # a policy package (its rule files, payer lists in subfolders, its own switches): --policy DIR
        return Side(f"{label} ({spec}, policy package of {len(files)} rule file(s))", args=["--policy", str(path.resolve())])
    if path.is_file():
        if path.suffix != ".lp":
            raise DiffError(f"{spec}: a rule file must end in .lp")
        return Side(f"{label} ({spec})", args=["--rules", str(path.resolve())])
    return Side(f"{label} (git {spec})", env={"ONCOLOGIC_HOME": str(_revision_root(spec, work))})


def run_side(side: Side, corpus: str, out: Path, batch_args: Iterable[str]) -> None:
    """Code the corpus under one side into ``out`` (JSON Lines) with ``oncologic batch``."""
    env = {**os.environ, **side.env}
    # the side's own arguments last: a policy package side replaces a --policy given for both
    cmd = [sys.executable, "-m", "oncologic.cli", "batch", corpus, "-o", str(out), "--no-progress", *batch_args,
           *side.args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DiffError(f"{side.label}: coding the corpus failed (exit {proc.returncode}): {tail}")


# ------------------------------------------------------------------------------------------
# comparison


def _records(path: Path) -> dict[tuple[int, str], dict]:
    out: dict[tuple[int, str], dict] = {}
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                rec = json.loads(raw)
                out[(rec.get("record", len(out)), str(rec.get("encounter")))] = rec
    return out


def _money(line: dict) -> Optional[float]:
    pay = line.get("payment")
    if isinstance(pay, dict) and pay.get("allowed") not in (None, ""):
        try:
            return float(pay["allowed"])
        except (TypeError, ValueError):
            return None
    if line.get("charge") not in (None, ""):
        try:
            return float(line["charge"])
        except (TypeError, ValueError):
            return None
    return None


def _line_key(line: dict) -> tuple:
    return (line.get("code"), tuple(line.get("modifiers") or ()), line.get("date"))


def _lines(rec: dict) -> dict[tuple, dict]:
    claim = rec.get("claim") or {}
    out: dict[tuple, dict] = {}
    for line in claim.get("lines", []):
        key = _line_key(line)
        while key in out:  # two lines with the same code, modifiers and date: keep both
            key = key + ("#",)
        out[key] = line
    return out


def _findings(rec: dict) -> Counter:
    claim = rec.get("claim") or {}
    return Counter((f.get("severity"), f.get("code"), (f.get("why") or {}).get("rule"), f.get("subject"))
                   for f in claim.get("findings", []))


def _rule(line: dict) -> str:
    return (line.get("why") or {}).get("rule") or "?"


@dataclass
class LineChange:
    kind: str  # added | removed | units
    code: str
    modifiers: tuple[str, ...]
    date: Optional[str]
    base_units: Optional[int]
    new_units: Optional[int]
    rule: str
    dollars: Optional[float]


@dataclass
class ClaimChange:
    record: int
    encounter: str
    lines: list[LineChange] = field(default_factory=list)
    findings_added: list[tuple] = field(default_factory=list)
    findings_removed: list[tuple] = field(default_factory=list)
    error: Optional[str] = None  # one side coded it, the other gave an error record
    clean: Optional[tuple[bool, bool]] = None  # (base, new) when the claim's clean flag changed


@dataclass
class DiffResult:
    base: str
    new: str
    compared: int = 0
    changes: list[ClaimChange] = field(default_factory=list)

    def summary(self) -> dict:
        codes: Counter = Counter()
        flipped = sum(1 for ch in self.changes if ch.clean is not None)
        rules: Counter = Counter()
        dollars = 0.0
        known = 0
        for ch in self.changes:
            for lc in ch.lines:
                codes[f"{lc.kind} {lc.code}"] += 1
                rules[lc.rule] += 1
                if lc.dollars is not None:
                    dollars += lc.dollars
                    known += 1
            for f in ch.findings_added + ch.findings_removed:
                rules[f[2] or "?"] += 1
        return {"base": self.base, "new": self.new, "claims_compared": self.compared,
                "claims_changed": len(self.changes), "clean_flag_changed": flipped, "line_changes_by_code": dict(sorted(codes.items())),
                "rules_responsible": dict(rules.most_common()),
                "dollars_changed": round(dollars, 2) if known else None}

    def to_json(self) -> str:
        doc = {"summary": self.summary(), "changes": [
            {"record": c.record, "encounter": c.encounter, "error": c.error,
             "clean": list(c.clean) if c.clean else None,
             "lines": [lc.__dict__ | {"modifiers": list(lc.modifiers)} for lc in c.lines],
             "findings_added": [list(f) for f in c.findings_added],
             "findings_removed": [list(f) for f in c.findings_removed]} for c in self.changes]}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def render(self) -> str:
        out: list[str] = [f"--- {self.base}", f"+++ {self.new}"]
        for ch in self.changes:
            out.append(f"record {ch.record}, encounter {ch.encounter}:")
            if ch.error:
                out.append(f"  ! {ch.error}")
            for lc in ch.lines:
                code = lc.code + "".join(f"-{m}" for m in lc.modifiers)
                money = f"  ${lc.dollars:,.2f}" if lc.dollars is not None else ""
                if lc.kind == "added":
                    out.append(f"  + {code} x{lc.new_units} {lc.date}  [{lc.rule}]{money}")
                elif lc.kind == "removed":
                    out.append(f"  - {code} x{lc.base_units} {lc.date}  [{lc.rule}]{money}")
                else:
                    out.append(f"  ~ {code} x{lc.base_units} -> x{lc.new_units} {lc.date}  [{lc.rule}]{money}")
            for sev, code, rule, subject in ch.findings_removed:
                out.append(f"  - finding {sev} {code} on {subject}  [{rule}]")
            for sev, code, rule, subject in ch.findings_added:
                out.append(f"  + finding {sev} {code} on {subject}  [{rule}]")
            if ch.clean is not None:
                out.append(f"  clean: {ch.clean[0]} -> {ch.clean[1]}")
        s = self.summary()
        out.append("")
        out.append(f"{s['claims_changed']} of {s['claims_compared']} claims changed"
                   f" ({s['clean_flag_changed']} changed their clean flag)")
        for key, n in s["line_changes_by_code"].items():
            out.append(f"  {n:6d}  {key}")
        if s["rules_responsible"]:
            out.append("rules responsible (lines and findings that changed):")
            for rule, n in list(s["rules_responsible"].items())[:15]:
                out.append(f"  {n:6d}  {rule}")
        if s["dollars_changed"] is not None:
            out.append(f"dollars on changed lines (allowed, else charge): ${s['dollars_changed']:,.2f}")
        else:
            out.append("dollars: no charge or payment on the changed lines (no charge master / prices loaded)")
        return "\n".join(out) + "\n"


def compare(base_path: Path, new_path: Path, base_label: str = "base", new_label: str = "new") -> DiffResult:
    """Compare two ``oncologic batch`` outputs of one corpus."""
    base, new = _records(base_path), _records(new_path)
    result = DiffResult(base_label, new_label)
    for key in sorted(set(base) | set(new)):
        b, n = base.get(key), new.get(key)
        result.compared += 1
        change = ClaimChange(key[0], key[1])
        if b is None or n is None or ("error" in b) != ("error" in n):
            which = "base" if (b is None or "error" in (b or {})) else "new"
            change.error = f"only one side coded it ({which} has no claim)"
            result.changes.append(change)
            continue
        if "error" in b:
            continue
        bl, nl = _lines(b), _lines(n)
        for k in sorted(set(bl) | set(nl), key=str):
            lb, ln = bl.get(k), nl.get(k)
            if lb is None:
                change.lines.append(LineChange("added", ln["code"], tuple(ln.get("modifiers") or ()), ln.get("date"),
                                               None, ln.get("units"), _rule(ln), _money(ln)))
            elif ln is None:
                change.lines.append(LineChange("removed", lb["code"], tuple(lb.get("modifiers") or ()), lb.get("date"),
                                               lb.get("units"), None, _rule(lb), _money(lb)))
            elif lb.get("units") != ln.get("units"):
                mb, mn = _money(lb), _money(ln)
                delta = None if mb is None or mn is None else mn - mb
                change.lines.append(LineChange("units", lb["code"], tuple(lb.get("modifiers") or ()), lb.get("date"),
                                               lb.get("units"), ln.get("units"), _rule(ln), delta))
        fb, fn = _findings(b), _findings(n)
        change.findings_added = sorted((fn - fb).elements(), key=str)
        change.findings_removed = sorted((fb - fn).elements(), key=str)
        cb, cn = (b.get("claim") or {}).get("clean"), (n.get("claim") or {}).get("clean")
        if cb != cn:
            change.clean = (bool(cb), bool(cn))
        if change.lines or change.findings_added or change.findings_removed or change.clean:
            result.changes.append(change)
    return result


def diff_corpus(corpus: str, base_spec: Optional[str], new_spec: Optional[str], batch_args: Iterable[str] = (),
                keep: Optional[Path] = None) -> DiffResult:
    """Code ``corpus`` under both sides and compare (the library entry point of ``oncologic diff``)."""
    batch_args = list(batch_args)
    with tempfile.TemporaryDirectory(prefix="oncologic-diff-") as tmp:
        work = Path(tmp)
        sides = []
        for spec, label in ((base_spec, "base"), (new_spec, "new")):
            sub = work / label
            sub.mkdir()
            sides.append(prepare_side(spec, sub, label))
        outs = [(keep or work) / "base.jsonl", (keep or work) / "new.jsonl"]
        for side, out in zip(sides, outs):
            run_side(side, corpus, out, batch_args)
        return compare(outs[0], outs[1], sides[0].label, sides[1].label)
