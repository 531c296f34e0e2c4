"""Case files: YAML tests that rule authors write without Python (OpenFisca style).

A case file is a YAML list (or a mapping with ``cases:``) of cases::

    - name: chemo infusion of 91 minutes earns one additional hour
      policy: medicare                 # optional profile (encodings/policies/NAME.lp)
      switches: [label_hydration_integral]   # optional per-case policy switches
      rules_files: [my_rules.lp]       # optional extra rule files, relative to the case file
      encounter: {...}                 # or  encounter_file: ../../examples/x.yaml
      expect:
        lines:                         # the claim's lines, exactly, in order
          - {code: "96413", units: 1}
          - {code: "96415", units: 1, modifiers: []}
        include_lines: [...]           # lines that must be present (any order)
        absent: ["96417"]              # codes on no line
        not_billed: [{subject: a1, candidate: "96415", rule: admin.hour_not_reached}]
        findings: [{code: STOP_TIME_MISSING, severity: error, subject: a1}]
        no_findings: [PRIMARY_REASON_ASSUMED]
        rules: [admin.initial]         # rule ids that must appear in some reason
        not_rules: [admin.concurrent]
        clean: true
      error: "administrations[0].stop"  # instead of expect: the input must be rejected,
                                        # with a message containing this text

Only the keys given in an expected line are compared (``code`` is always compared).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .load import InputError, Loaded, validate
from .model import Claim

LINE_KEYS = ("code", "units", "modifiers", "ndc", "date", "note", "diagnoses", "rule")


@dataclass
class Case:
    name: str
    path: Path
    index: int
    data: dict
    policy: Optional[str] = "medicare"
    switches: tuple[str, ...] = ()
    rules_files: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.path.name}::{self.name}"

    @property
    def group(self) -> tuple:
        return (self.policy, self.rules_files)


@dataclass
class Outcome:
    case: Case
    failures: list[str] = field(default_factory=list)
    claim: Optional[Claim] = None

    @property
    def ok(self) -> bool:
        return not self.failures


class CaseFileError(Exception):
    pass


def load_cases(path: Path) -> list[Case]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{path}: invalid YAML: {exc}") from None
    if isinstance(doc, dict) and "cases" in doc:
        items = doc["cases"]
        defaults = {k: v for k, v in doc.items() if k != "cases"}
    else:
        items, defaults = doc, {}
    if not isinstance(items, list):
        raise CaseFileError(f"{path}: a case file is a list of cases (or a mapping with cases:)")
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or "name" not in raw:
            raise CaseFileError(f"{path}: case {i} needs a name")
        data = {**defaults, **raw}
        if "expect" not in data and "error" not in data:
            raise CaseFileError(f"{path}: case {data['name']!r} needs expect: or error:")
        rules = tuple(str((path.parent / r).resolve()) for r in data.get("rules_files", []) or [])
        out.append(
            Case(
                name=str(data["name"]),
                path=path,
                index=i,
                data=data,
                policy=data.get("policy", "medicare"),
                switches=tuple(data.get("switches", []) or []),
                rules_files=rules,
            )
        )
    return out


def encounter_document(case: Case) -> Any:
    data = case.data
    if "encounter_file" in data:
        path = (case.path.parent / data["encounter_file"]).resolve()
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "encounter" in data:  # overrides on top of the file
            doc = _merge(doc, data["encounter"])
        return doc
    if "encounter" not in data:
        raise CaseFileError(f"{case.id}: needs encounter: or encounter_file:")
    return copy.deepcopy(data["encounter"])


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def _match(expected: dict, actual: dict) -> bool:
    for key, want in expected.items():
        if key == "rule":
            if actual.get("why", {}).get("rule") != want:
                return False
            continue
        got = actual.get(key)
        if key == "units":
            if got != want:
                return False
        elif key in ("modifiers", "diagnoses"):
            if list(got or []) != list(want or []):
                return False
        elif key == "code" or key == "candidate":
            if str(got) != str(want):
                return False
        elif str(got) != str(want) and got != want:
            return False
    return True


def _fmt_line(line: dict) -> str:
    mods = "-".join(line.get("modifiers") or [])
    return f"{line.get('code')}{'-' + mods if mods else ''} x{line.get('units')}"


def check(case: Case, claim: Claim) -> list[str]:
    """Compare a claim with the case's expectations; return readable failures."""
    exp = case.data.get("expect") or {}
    doc = claim.model_dump(mode="json", by_alias=True)
    lines = doc["lines"]
    fails: list[str] = []
    if "lines" in exp:
        want = exp["lines"] or []
        ok = len(want) == len(lines) and all(_match(w, g) for w, g in zip(want, lines))
        if not ok:
            diff = ["lines differ:", "  expected: " + ", ".join(_fmt_line({"units": "?", **w}) for w in want),
                    "  got:      " + ", ".join(_fmt_line(g) for g in lines)]
            for i in range(max(len(want), len(lines))):
                w = want[i] if i < len(want) else None
                g = lines[i] if i < len(lines) else None
                if w is None or g is None or not _match(w, g):
                    fails_line = f"  line {i + 1}: expected {w!r}, got " + (f"{_fmt_line(g)} [{g['why']['rule']}] {g['why']['text']}" if g else "nothing")
                    diff.append(fails_line)
            fails.append("\n".join(diff))
    for w in exp.get("include_lines", []) or []:
        if not any(_match(w, g) for g in lines):
            fails.append(f"missing line {w!r}; got: " + ", ".join(_fmt_line(g) for g in lines))
    for code in exp.get("absent", []) or []:
        hits = [g for g in lines if str(g["code"]) == str(code)]
        if hits:
            fails.append(f"code {code} must not be billed, but line {hits[0]['line']} has it [{hits[0]['why']['rule']}]: {hits[0]['why']['text']}")
    for w in exp.get("not_billed", []) or []:
        if not any(_match(w, nb) for nb in doc["not_billed"]):
            fails.append(f"missing not_billed {w!r}; got: " + ", ".join(f"{nb['candidate']}/{nb['subject']}[{nb['why']['rule']}]" for nb in doc["not_billed"]))
    for w in exp.get("findings", []) or []:
        if not any(_match(w, f) for f in doc["findings"]):
            fails.append(f"missing finding {w!r}; got: " + ", ".join(f"{f['code']}/{f['severity']}/{f['subject']}" for f in doc["findings"]))
    for code in exp.get("no_findings", []) or []:
        hits = [f for f in doc["findings"] if f["code"] == code]
        if hits:
            fails.append(f"finding {code} must not be raised, got: {hits[0]['message']}")
    fired = {x["why"]["rule"] for x in lines + doc["not_billed"] + doc["findings"]}
    fired |= {r for x in lines for r in []}
    for rid in exp.get("rules", []) or []:
        if rid not in fired:
            fails.append(f"rule {rid} did not fire; fired: {', '.join(sorted(fired))}")
    for rid in exp.get("not_rules", []) or []:
        if rid in fired:
            fails.append(f"rule {rid} must not fire")
    if "clean" in exp and bool(exp["clean"]) != claim.clean:
        errs = [f"{f['code']}: {f['message']}" for f in doc["findings"] if f["severity"] == "error"]
        fails.append(f"clean is {claim.clean}, expected {exp['clean']}" + (f" (errors: {'; '.join(errs)})" if errs else ""))
    return fails


def run_cases(cases: list[Case]) -> list[Outcome]:
    """Run cases, batching those that share a profile and rule files into one solve."""
    from .solver import code_encounters

    outcomes: dict[int, Outcome] = {}
    groups: dict[tuple, list[tuple[int, Case, Loaded]]] = {}
    for n, case in enumerate(cases):
        out = Outcome(case)
        outcomes[n] = out
        try:
            loaded = validate(encounter_document(case), case.id)
        except InputError as exc:
            want = case.data.get("error")
            if want is None:
                out.failures.append(f"input rejected: {exc.render()}")
            elif str(want) not in exc.render():
                out.failures.append(f"input rejected, but the message does not contain {want!r}: {exc.render()}")
            continue
        except CaseFileError as exc:
            out.failures.append(str(exc))
            continue
        if "error" in case.data:
            out.failures.append(f"input accepted, expected rejection containing {case.data['error']!r}")
            continue
        groups.setdefault(case.group, []).append((n, case, loaded))
    for (policy, rules), members in groups.items():
        try:
            claims = code_encounters([m[2] for m in members], policy=policy, rules=rules, policies=[m[1].switches for m in members])
        except InputError as exc:
            for n, case, _ in members:
                if case.data.get("error") and str(case.data["error"]) in exc.render():
                    continue
                outcomes[n].failures.append(f"input rejected while building facts: {exc.render()}")
            continue
        for (n, case, _), claim in zip(members, claims):
            outcomes[n].claim = claim
            outcomes[n].failures.extend(check(case, claim))
    return [outcomes[n] for n in range(len(cases))]


def discover(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(x for x in p.rglob("*.yaml") if x.is_file())
        else:
            out.append(p)
    return out
