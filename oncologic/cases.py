"""Case files: YAML tests that rule authors write without Python (OpenFisca style).

A case file is a YAML list (or a mapping with ``cases:``) of cases::

    - name: chemo infusion of 91 minutes earns one additional hour
      description: optional free text (shown in reports)
      policy: medicare                 # optional profile (encodings/policies/NAME.lp); null = none
      switches: [label_hydration_integral]   # optional per-case policy switches (decisions.md)
      rules_files: [my_rules.lp]       # optional extra rule files, relative to the case file
      site: site.toml                  # optional site configuration (docs/site.md), relative to
                                       #   the case file, or inline as a mapping of its keys
      encounter: {...}                 # or  encounter_file: ../../examples/x.yaml
      expect:
        lines:                         # the claim's lines, exactly, in order
        lines_filter: "96*"            # optional: compare lines: with the lines whose code matches
                                       #   these glob(s) only (e.g. the administration codes);
                                       #   may also be given per case or as a file default
          - {code: "96413", units: 1}
          - {code: "96415", units: 1, modifiers: []}
        include_lines: [...]           # lines that must be present (any order)
        absent: ["96417"]              # codes on no line
        not_billed: [{subject: a1, candidate: "96415", rule: admin.hour_not_reached}]
        findings: [{code: STOP_TIME_MISSING, severity: error, subject: a1}]
        no_findings: [PRIMARY_REASON_ASSUMED, {code: PA_MISSING, subject: a1}]   # a code, or a
                                       #   code limited to one subject
        rules: [admin.initial]         # rule ids that must fire (any tagged rule, also the
        not_rules: [admin.concurrent]  #   intermediate ones such as time.short_infusion_is_push)
        clean: true
      error: "administrations[0].stop"  # instead of expect: the input must be rejected,
                                        # with a message containing this text
      requires_rules: [drug.units]     # optional: skip the case (not fail) while these rule ids
                                       #   do not exist yet (rules being written)
      requires_switches: [no_jw_jz]    # optional: skip while no rule tests these switches yet
      skip: "reason"                   # optional: skip the case with this reason
      allow_unknown_fields: true       # optional: the encounter may hold keys the contract does
                                       #   not know (a warning, as for real input); else an error

With a mapping, every key beside ``cases:`` is a default for each case (``policy``,
``switches``, ``requires_rules``...), except ``defs:``, a block for YAML anchors. Every other
key, anywhere (file, case, ``expect:``, an expected line, not_billed or finding entry, the
encounter), must be a known one: a misspelled ``polcy:`` is an error, not a case silently run
under Medicare. ``rules:``/``not_rules:`` ids must exist in the rules the case runs with.
``policy:`` names a built-in profile or a policy package, a directory relative to the case file
(``policy: ..`` in a package's own ``cases/`` folder).

Only the keys given in an expected line are compared (``code`` is always compared). A key
ending in ``_contains`` matches a substring, case-insensitive: ``text_contains`` the reason
sentence, ``message_contains`` a finding's message, ``note_contains`` a line's note. An
unknown switch name is a failure, not a silently ignored setting.

Run them with ``oncologic test PATHS [-k NAME]`` or plain ``pytest`` (the plugin collects YAML
files under any folder named ``cases``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml

from .load import InputError, Loaded, validate
from .model import Claim

LINE_KEYS = ("code", "units", "modifiers", "ndc", "date", "note", "diagnoses", "rule")
EXPECT_KEYS = frozenset(
    {"lines", "lines_filter", "include_lines", "absent", "not_billed", "findings", "no_findings", "rules", "not_rules", "clean"}
)
CASE_KEYS = frozenset(
    {"name", "description", "policy", "switches", "rules_files", "encounter", "encounter_file", "expect", "error",
     "requires_rules", "requires_switches", "skip", "lines_filter", "allow_unknown_fields", "site"}
)
FILE_KEYS = CASE_KEYS - {"name"} | {"cases", "defs"}
# the keys an expected entry may name: a field of the claim JSON (read from the output models, so
# a new field is accepted as soon as the claim has it), rule (= why.rule), or X_contains


def _fields(model) -> frozenset[str]:
    return frozenset((f.serialization_alias or f.alias or name) for name, f in model.model_fields.items()) - {"why"}


def _entry_keys() -> dict[str, frozenset[str]]:
    from .model import Finding, Line, NotBilled

    lines = _fields(Line) | {"rule", "text_contains", "note_contains"}
    return {
        "lines": lines,
        "include_lines": lines,
        "not_billed": _fields(NotBilled) | {"rule", "text_contains"},
        "findings": _fields(Finding) | {"rule", "text_contains", "message_contains"},
        "no_findings": frozenset({"code", "severity", "subject"}),
    }


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

    @property
    def description(self) -> str:
        return str(self.data.get("description") or "")


@dataclass
class Outcome:
    case: Case
    failures: list[str] = field(default_factory=list)
    claim: Optional[Claim] = None
    skipped: Optional[str] = None
    fired: frozenset[str] = frozenset()
    limit: Optional[str] = None  # the message of a time or memory limit the case's solve reached

    @property
    def ok(self) -> bool:
        return not self.failures


class CaseFileError(Exception):
    pass


def load_cases(path: Path) -> list[Case]:
    from .load import parse_yaml

    try:
        # the loader of encounter files: duplicate keys rejected, size limits, "09:00" as text
        doc = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except InputError as exc:
        raise CaseFileError(exc.render()) from None
    except UnicodeDecodeError:
        raise CaseFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise CaseFileError(f"{path}: cannot read: {exc.strerror}") from None
    if isinstance(doc, dict) and "cases" in doc:
        items = doc["cases"]
        defaults = {k: v for k, v in doc.items() if k not in ("cases", "defs")}
        unknown = sorted(set(doc) - FILE_KEYS, key=str)
        if unknown:
            raise CaseFileError(f"{path}: unknown key(s) {', '.join(map(str, unknown))} "
                                f"(known: {', '.join(sorted(FILE_KEYS))})")
    else:
        items, defaults = doc, {}
    if not isinstance(items, list):
        raise CaseFileError(f"{path}: a case file is a list of cases (or a mapping with cases:)")
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or "name" not in raw:
            raise CaseFileError(f"{path}: case {i} needs a name")
        unknown = sorted(set(raw) - CASE_KEYS, key=str)
        if unknown:
            raise CaseFileError(f"{path}: case {raw['name']!r}: unknown key(s) {', '.join(map(str, unknown))} "
                                f"(known: {', '.join(sorted(CASE_KEYS))})")
        data = {**defaults, **raw}
        if "expect" not in data and "error" not in data:
            raise CaseFileError(f"{path}: case {data['name']!r} needs expect: or error:")
        expect = data.get("expect")
        if expect is not None and not isinstance(expect, dict):
            raise CaseFileError(f"{path}: case {data['name']!r}: expect: is a mapping")
        unknown = sorted(set(expect or {}) - EXPECT_KEYS)
        if unknown:
            raise CaseFileError(
                f"{path}: case {data['name']!r}: unknown expect key(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(EXPECT_KEYS))})"
            )
        for key, allowed in _entry_keys().items():
            entries = (expect or {}).get(key) or []
            if not isinstance(entries, list):
                raise CaseFileError(f"{path}: case {data['name']!r}: expect.{key} is a list")
            for j, entry in enumerate(entries):
                if isinstance(entry, dict):
                    bad = sorted(set(entry) - allowed, key=str)
                    if bad:
                        raise CaseFileError(f"{path}: case {data['name']!r}: expect.{key}[{j}]: unknown key(s) "
                                            f"{', '.join(map(str, bad))} (known: {', '.join(sorted(allowed))})")
                elif key != "no_findings":
                    raise CaseFileError(f"{path}: case {data['name']!r}: expect.{key}[{j}] is a mapping")
        rules = tuple(str((path.parent / r).resolve()) for r in data.get("rules_files", []) or [])
        switches = data.get("switches", []) or []
        if isinstance(switches, str):
            switches = [switches]
        out.append(
            Case(
                name=str(data["name"]),
                path=path,
                index=i,
                data=data,
                policy=_policy_of(path, data.get("policy", "medicare")),
                switches=tuple(str(s) for s in switches),
                rules_files=rules,
            )
        )
    return out


def _policy_of(path: Path, value: Any) -> Optional[str]:
    """A case's policy: a built-in profile name as given, or a policy package (a directory,
    relative to the case file) as an absolute path."""
    if value is None:
        return None
    from . import refdata

    text = str(value)
    if refdata.is_policy_package(text):
        return str((path.parent / text).resolve())
    return text


def _case_site(case: Case) -> Any:
    """The case's site configuration: a TOML file next to the case, or the keys inline."""
    site = case.data.get("site")
    if site is None:
        return None
    from .formats.site import load_site, parse_site

    if isinstance(site, dict):
        return parse_site(site, case.path.parent, f"{case.path.name}: site")
    return load_site(case.path.parent / str(site))


def encounter_document(case: Case) -> Any:
    data = case.data
    if "encounter_file" in data:
        path = (case.path.parent / data["encounter_file"]).resolve()
        from .load import parse_document

        try:
            doc = parse_document(path.read_text(encoding="utf-8"), str(path))
        except InputError as exc:
            raise CaseFileError(f"{case.id}: encounter_file {data['encounter_file']}: {exc.render()}") from None
        except UnicodeDecodeError:
            raise CaseFileError(f"{case.id}: encounter_file {data['encounter_file']}: not UTF-8 text") from None
        except OSError as exc:
            raise CaseFileError(f"{case.id}: encounter_file {data['encounter_file']}: {exc.strerror}") from None
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


# --------------------------------------------------------------------------------------------
# comparing


def _match(expected: dict, actual: dict) -> bool:
    for key, want in expected.items():
        if key.endswith("_contains"):  # text_contains (the why sentence), message_contains, note_contains
            name = key[: -len("_contains")]
            got = actual.get("why", {}).get("text") if name == "text" else actual.get(name)
            if got is None or str(want).lower() not in str(got).lower():
                return False
            continue
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


def _cell(line: dict, key: str, actual: bool) -> str:
    if key == "rule":
        value = line.get("why", {}).get("rule") if actual else line.get("rule")
    else:
        value = line.get(key)
    if not actual and key not in line:
        return "*"
    if key in ("modifiers", "diagnoses"):
        return "[" + ",".join(str(v) for v in (value or [])) + "]"
    return "-" if value is None else str(value)


def line_diff(want: Sequence[dict], lines: Sequence[dict]) -> list[str]:
    """A readable diff of expected and actual claim lines over the keys the case names.

    ``-`` marks an expected line that is not on the claim, ``+`` a claim line that was not
    expected; each ``+`` line is followed by the rule and sentence that produced it.
    ``*`` in an expected line means "not compared"."""
    keys = ["code"] + [k for k in LINE_KEYS if k != "code" and any(k in w for w in want)]
    if "units" not in keys:
        keys.insert(1, "units")

    def row(line: dict, actual: bool) -> str:
        return "  ".join(f"{k}={_cell(line, k, actual)}" for k in keys)

    exp_rows = [row(w, False) for w in want]
    got_rows = [row(g, True) for g in lines]
    out: list[str] = []
    # align expected and actual lines by a longest common subsequence over _match
    # (a "*" cell never equals an actual value textually, so difflib cannot do it)
    i = j = 0
    matcher_ops = []
    n, m = len(want), len(lines)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            if _match(want[a], lines[b]):
                best[a][b] = 1 + best[a + 1][b + 1]
            else:
                best[a][b] = max(best[a + 1][b], best[a][b + 1])
    while i < n or j < m:
        if i < n and j < m and _match(want[i], lines[j]):
            matcher_ops.append((" ", i, j))
            i += 1
            j += 1
        elif j < m and (i >= n or best[i][j + 1] >= best[i + 1][j]):
            matcher_ops.append(("+", None, j))
            j += 1
        else:
            matcher_ops.append(("-", i, None))
            i += 1
    for op, a, b in matcher_ops:
        if op == " ":
            out.append(f"    line {lines[b]['line']:>2}  {got_rows[b]}")
        elif op == "-":
            out.append(f"  - expected  {exp_rows[a]}")
        else:
            g = lines[b]
            out.append(f"  + line {g['line']:>2}  {got_rows[b]}")
            out.append(f"             [{g['why']['rule']}] {g['why']['text']}")
    return out


def check(case: Case, claim: Claim, fired: Optional[Iterable[str]] = None,
          known_ids: Optional[frozenset[str]] = None) -> list[str]:
    """Compare a claim with the case's expectations; return readable failures.

    ``fired`` is every rule id that fired for the encounter (intermediate rules included);
    without it, the rules on the claim's lines, rejected candidates and findings are used."""
    exp = case.data.get("expect") or {}
    doc = claim.model_dump(mode="json", by_alias=True)
    lines = doc["lines"]
    fails: list[str] = []
    if "lines" in exp:
        want = exp["lines"] or []
        pattern = exp.get("lines_filter", case.data.get("lines_filter"))
        if pattern:
            import fnmatch

            patterns = [pattern] if isinstance(pattern, str) else list(pattern)
            shown = [g for g in lines if any(fnmatch.fnmatchcase(str(g["code"]), str(p)) for p in patterns)]
        else:
            shown = lines
        ok = len(want) == len(shown) and all(_match(w, g) for w, g in zip(want, shown))
        if not ok:
            title = "claim lines differ (- expected, + got)" + (f", lines {pattern} only:" if pattern else ":")
            fails.append("\n".join([title, *line_diff(want, shown)]))
    for w in exp.get("include_lines", []) or []:
        if not any(_match(w, g) for g in lines):
            fails.append(f"missing line {_fmt_want(w)}; got: " + (", ".join(_fmt_line(g) for g in lines) or "no lines"))
    for code in exp.get("absent", []) or []:
        hits = [g for g in lines if str(g["code"]) == str(code)]
        if hits:
            fails.append(f"code {code} must not be billed, but line {hits[0]['line']} has it [{hits[0]['why']['rule']}]: {hits[0]['why']['text']}")
    for w in exp.get("not_billed", []) or []:
        if not any(_match(w, nb) for nb in doc["not_billed"]):
            fails.append(f"missing not_billed {_fmt_want(w)}; got: " + (", ".join(f"{nb['candidate']}/{nb['subject']} [{nb['why']['rule']}]" for nb in doc["not_billed"]) or "none"))
    for w in exp.get("findings", []) or []:
        if not any(_match(w, f) for f in doc["findings"]):
            fails.append(f"missing finding {_fmt_want(w)}; got: " + (", ".join(f"{f['code']}/{f['severity']}/{f['subject']}" for f in doc["findings"]) or "none"))
    for item in exp.get("no_findings", []) or []:
        want = item if isinstance(item, dict) else {"code": item}
        hits = [f for f in doc["findings"] if all(str(f.get(k)) == str(v) for k, v in want.items())]
        if hits:
            label = want.get("code", "") + (f" for {want['subject']}" if "subject" in want else "")
            fails.append(f"finding {label} must not be raised, got ({hits[0]['subject']}): {hits[0]['message']}")
    on_claim = {x["why"]["rule"] for x in lines + doc["not_billed"] + doc["findings"]}
    all_fired = set(fired) if fired is not None else on_claim
    if known_ids is not None:
        for key in ("rules", "not_rules"):
            unknown = [r for r in exp.get(key, []) or [] if r not in known_ids]
            if unknown:
                fails.append(f"expect.{key}: unknown rule id(s) {', '.join(map(str, unknown))}: no rule of the files in "
                             "play has it (oncologic rules lists them)")
    for rid in exp.get("rules", []) or []:
        if rid not in all_fired:
            fails.append(f"rule {rid} did not fire; fired: {', '.join(sorted(all_fired)) or 'none'}")
    for rid in exp.get("not_rules", []) or []:
        if rid in all_fired:
            where = [x for x in lines + doc["not_billed"] + doc["findings"] if x["why"]["rule"] == rid]
            fails.append(f"rule {rid} must not fire" + (f", but it explains: {where[0]['why']['text']}" if where else ""))
    if "clean" in exp and bool(exp["clean"]) != claim.clean:
        errs = [f"{f['code']}: {f['message']}" for f in doc["findings"] if f["severity"] == "error"]
        fails.append(f"clean is {claim.clean}, expected {exp['clean']}" + (f" (errors: {'; '.join(errs)})" if errs else ""))
    return fails


def _fmt_want(w: Any) -> str:
    if isinstance(w, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in w.items()) + "}"
    return repr(w)


# --------------------------------------------------------------------------------------------
# solving with provenance


@dataclass
class Solved:
    """One encounter's claim together with the raw answer, its context and the program."""

    claim: Claim
    answer: Any
    context: Any
    program: Any

    @property
    def fired(self) -> frozenset[str]:
        return frozenset(self.program.rules[n].tag.id for recs in self.answer.why.values() for n, _v in recs)


def solve_detailed(
    batch: Sequence[Loaded],
    policy: Optional[str] = "medicare",
    rules: Sequence[str | Path] = (),
    switches: Optional[Sequence[Sequence[str]]] = None,
    limits: Any = "default",
) -> list[Solved]:
    """Like :func:`oncologic.solver.code_encounters`, keeping the answers (for ``rules:`` checks
    and ``oncologic explain``)."""
    from . import engine
    from .render import build_claim
    from .solver import solve_batch

    prog, answers, contexts = solve_batch(batch, policy, rules, switches, limits=limits)
    out = []
    for ctx in contexts:
        ans = answers.get(ctx.number, engine.Answer())
        out.append(Solved(build_claim(prog, ans, ctx), ans, ctx, prog))
    return out


_SWITCH = re.compile(r"\bpolicy\(\s*E\s*,\s*([a-z][a-z0-9_]*)\s*\)")


@lru_cache(maxsize=16)
def _switches_in(files: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for name in files:
        out.update(_SWITCH.findall(Path(name).read_text(encoding="utf-8")))
    return frozenset(out)


def known_switches(policy: Optional[str] = None) -> frozenset[str]:
    """Every policy switch a standard rule tests (``policy(E,name)``), plus those the rule files
    of ``policy`` (a profile, or a policy package's own switches) test."""
    from . import refdata

    files = [str(p) for p in refdata.rule_files()]
    if policy:
        files += [str(p) for p in refdata.policy_files(policy)]
    return _switches_in(tuple(files))


@lru_cache(maxsize=1)
def known_rule_ids() -> frozenset[str]:
    from . import engine

    return frozenset(r.tag.id for r in engine.load_program().rules)


# --------------------------------------------------------------------------------------------
# running


def run_cases(cases: list[Case], limits: Any = "default") -> list[Outcome]:
    """Run cases, batching those that share a profile and rule files into one solve (each solve
    under ``limits``: oncologic.limits; a group past one gets Outcome.limit)."""
    outcomes: dict[int, Outcome] = {}
    groups: dict[tuple, list[tuple[int, Case, Loaded]]] = {}
    for n, case in enumerate(cases):
        out = Outcome(case)
        outcomes[n] = out
        if case.data.get("skip"):
            out.skipped = str(case.data["skip"])
            continue
        needed = case.data.get("requires_rules") or []
        if isinstance(needed, str):
            needed = [needed]
        missing = [r for r in needed if r not in known_rule_ids()]
        if missing:
            out.skipped = f"rule(s) not written yet: {', '.join(missing)}"
            continue
        later = case.data.get("requires_switches") or []
        if isinstance(later, str):
            later = [later]
        switches_known: frozenset[str] = frozenset()
        if later or case.switches:
            try:
                switches_known = known_switches(case.policy)
            except ValueError as exc:
                out.failures.append(str(exc))
                continue
        if later:
            absent = [s for s in later if s not in switches_known]
            if absent:
                out.skipped = f"switch(es) not implemented by any rule yet: {', '.join(absent)}"
                continue
        if case.switches:
            bad = [s for s in case.switches if s not in switches_known]
            if bad:
                out.failures.append(
                    f"unknown policy switch(es) {', '.join(bad)}; the rules test: {', '.join(sorted(switches_known))}"
                )
                continue
        try:
            loaded = validate(encounter_document(case), case.id, site=_case_site(case))
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
        unknown = [w for w in loaded.warnings if w.endswith("unknown field ignored")]
        if unknown and not case.data.get("allow_unknown_fields"):
            out.failures.append("encounter: " + "; ".join(w.replace("unknown field ignored", "unknown key") for w in unknown))
            continue
        groups.setdefault(case.group, []).append((n, case, loaded))
    for (policy, rules), members in groups.items():
        results = _solve_group(policy, rules, members, outcomes, limits)
        if results is None:
            continue
        for (n, case, _), solved in zip(members, results):
            out = outcomes[n]
            if isinstance(solved, str):
                out.failures.append(solved)
                continue
            if solved is None:  # expected rejection happened
                continue
            if "error" in case.data:
                out.failures.append(f"input accepted, expected rejection containing {case.data['error']!r}")
                continue
            out.claim = solved.claim
            out.fired = solved.fired
            ids = frozenset(r.tag.id for r in solved.program.rules)
            out.failures.extend(check(case, solved.claim, solved.fired, ids))
    return [outcomes[n] for n in range(len(cases))]


def _solve_group(policy, rules, members, outcomes, limits="default"):
    """Solve one group; on an input error while building facts, fall back to one by one so the
    error lands on the case that caused it."""
    from .engine import EncodingError, StrictModeError
    from .limits import LimitExceeded

    try:
        return solve_detailed([m[2] for m in members], policy=policy, rules=rules,
                              switches=[m[1].switches for m in members], limits=limits)
    except InputError:
        pass  # find the case that caused it, below
    except LimitExceeded as exc:
        for n, _case, _ in members:
            outcomes[n].failures.append(f"the rules could not run: {exc}")
            outcomes[n].limit = str(exc)
        return None
    except (EncodingError, StrictModeError, ValueError, RuntimeError) as exc:
        for n, _case, _ in members:
            outcomes[n].failures.append(f"the rules could not run: {exc}")
        return None
    out: list = []
    for n, case, loaded in members:
        try:
            out.append(solve_detailed([loaded], policy=policy, rules=rules, switches=[case.switches], limits=limits)[0])
        except (EncodingError, StrictModeError, LimitExceeded, RuntimeError) as exc:
            out.append(f"the rules could not run: {exc}")
            if isinstance(exc, LimitExceeded):
                outcomes[n].limit = str(exc)
        except InputError as exc:
            want = case.data.get("error")
            if want is not None and str(want) in exc.render():
                out.append(None)
            else:
                out.append(f"input rejected while building facts: {exc.render()}")
    return out


def discover(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(x for x in p.rglob("*.y*ml") if x.is_file() and x.suffix in (".yaml", ".yml"))
        else:
            out.append(p)
    return out


def select(cases: Iterable[Case], keywords: Sequence[str]) -> list[Case]:
    """Cases whose id (``file.yaml::name``) contains any keyword (case-insensitive); a keyword
    ``not X`` excludes. No keywords: every case."""
    cases = list(cases)
    if not keywords:
        return cases
    inc = [k.lower() for k in keywords if not k.lower().startswith("not ")]
    exc = [k[4:].strip().lower() for k in keywords if k.lower().startswith("not ")]
    out = []
    for c in cases:
        ident = c.id.lower()
        if inc and not any(k in ident for k in inc):
            continue
        if any(k in ident for k in exc):
            continue
        out.append(c)
    return out


def report(outcome: Outcome) -> str:
    """The failure report of one case, as ``oncologic test`` and pytest print it."""
    c = outcome.case
    head = f"FAIL {c.id}"
    if c.description:
        head += f"\n  ({c.description})"
    body = "\n".join("  " + line for f in outcome.failures for line in f.splitlines())
    where = f"  policy: {c.policy or '(none)'}" + (f"; switches: {', '.join(c.switches)}" if c.switches else "")
    return f"{head}\n{where}\n{body}\n  reproduce: oncologic test {c.path} -k {_shell_quote(c.name)}"


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# --------------------------------------------------------------------------------------------
# coverage: which rule ids the cases exercise


@dataclass
class Coverage:
    """Rule ids of the standard rules, every shipped profile and the cases' own rule files, with
    the cases that fired each (a rule fires when its provenance atom is in a case's answer)."""

    places: dict[str, list[str]]  # rule id -> file:line of its rules
    cases: dict[str, list[str]]  # rule id -> ids of the cases that fired it

    @property
    def exercised(self) -> list[str]:
        return sorted(r for r in self.places if self.cases.get(r))

    @property
    def missing(self) -> list[str]:
        return sorted(r for r in self.places if not self.cases.get(r))

    def percent(self) -> float:
        return 100.0 * len(self.exercised) / len(self.places) if self.places else 100.0

    def to_json(self) -> dict:
        return {"rule_ids": len(self.places), "exercised": len(self.exercised), "percent": round(self.percent(), 1),
                "rules": {r: {"places": self.places[r], "cases": sorted(self.cases.get(r, []))} for r in sorted(self.places)}}

    def render(self) -> str:
        out = [f"rule coverage: {len(self.exercised)} of {len(self.places)} rule ids exercised by the cases "
               f"({self.percent():.1f} %)"]
        if self.missing:
            out.append("rule ids no case exercises:")
            family = None
            for rid in self.missing:
                fam = rid.split(".", 1)[0]
                if fam != family:
                    family = fam
                    out.append(f"  [{fam}]")
                out.append(f"    {rid:<42} {', '.join(self.places[rid])}")
        return "\n".join(out)


def coverage(outcomes: Sequence[Outcome]) -> Coverage:
    """The rule coverage of a case run (``oncologic test --coverage``)."""
    from . import engine, refdata

    extra: list[tuple[Path, ...]] = [(p,) for p in sorted(refdata.POLICIES.glob("*.lp"))]
    for o in outcomes:
        extra += [(Path(f),) for f in o.case.rules_files]
        if o.case.policy and refdata.is_policy_package(o.case.policy):
            try:  # a policy package's files load together (they may read each other's predicates)
                extra.append(tuple(refdata.policy_files(o.case.policy)))
            except ValueError:
                pass
    places: dict[str, list[str]] = {}
    for rule in engine.load_program().rules:
        places.setdefault(rule.tag.id, []).append(f"{rule.tag.file}:{rule.tag.line}")
    std = set(places)
    for paths in dict.fromkeys(extra):
        try:
            prog = engine.load_program(list(paths))
        except Exception:  # noqa: BLE001 - a file that does not load is reported by the case run itself
            continue
        for rule in prog.rules:
            if rule.tag.id not in std:
                spot = f"{rule.tag.file}:{rule.tag.line}"
                if spot not in places.setdefault(rule.tag.id, []):
                    places[rule.tag.id].append(spot)
    fired: dict[str, list[str]] = {}
    for o in outcomes:
        for rid in o.fired:
            fired.setdefault(rid, []).append(o.case.id)
    return Coverage(places, fired)
