"""``oncologic explain``: the derivation behind a claim line, a rejected candidate or a finding.

The engine records, for every tagged rule that fired, the values of its variables (``_why``
atoms). A tree node is one atom: the tagged rule(s) that derived it, their sentence, and one
child per positive body literal of that rule, with the values filled in. A child that has its
own ``_why`` records is expanded the same way; a child without one is an input fact (shown with
the input item it came from), a reference-data fact, or a fact/derived atom of an untagged rule.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import click

from ..cli import (_fail_input, check_policy, check_switches, fail_limit, limit_options, load_input, make_limits,
                   policy_option, site_option, switch_option)

# input predicates (encodings/interface.lp) -> how their arguments after E name an input item
ADMIN_PREDS = frozenset(
    "admin route access start stop purpose primary_reason separate_access discontinued pump research lesions adm_site day".split()
)
DRUG_PREDS = frozenset(
    ("drug drug_code drug_code_from_ndc drug_ndc drug_named drug_manufacturer drug_name drug_manufacturer_name "
     "drug_kind dose container container_size container_count discarded supplied_by substance").split()
)
INDEXED_PREDS = {
    "service": "s", "separately_identifiable": "s", "diagnosis": "dx",
    "auth": "auth", "auth_code": "auth", "auth_window": "auth", "auth_units": "auth", "auth_used": "auth",
    "evidence": "ev",
}
ENCOUNTER_PREDS = {
    "encounter": "encounter", "setting": "setting", "dos": "date_of_service", "payer": "payer",
    "payer_type": "payer.type", "coverage": "payer.coverage", "member_id": "payer.member_id",
    "trial": "clinical_trial", "trial_nct": "clinical_trial.nct", "trial_qualifying": "clinical_trial.qualifying",
    "grid": "clinical_trial.billing_grid", "plan": "treatment_plan", "plan_drug": "treatment_plan.drugs",
    "plan_cycle": "treatment_plan.cycle", "plan_cycles": "treatment_plan.planned_cycles",
    "plan_dx": "treatment_plan.diagnoses", "plan_modification": "treatment_plan.modifications",
    "policy": "switches / policy profile", "payer_name": "payer.name", "payer_plan": "payer.name (site [payers] plan)",
}
REFERENCE_PREFIXES = ("hcpcs", "asp_limit", "ndc", "mue", "ncci", "icd10", "table")
PROFILE_PREDS = frozenset({"policy_on", "policy_code_kind"})

MAX_DEPTH = 14
_DEFINED: dict[int, dict] = {}


_HEAD = re.compile(r"^([a-z][A-Za-z0-9_]*)\(")


def _definition_index(prog) -> dict[str, tuple[list[str], list[str]]]:
    """predicate name -> (file:line of its facts, file:line of its rules), read from the rule
    files' text (heads that start a line), so it does not depend on AST locations."""
    from .. import refdata

    out: dict[str, tuple[list[str], list[str]]] = {}
    for name in prog.files:
        path = Path(name)
        try:
            display = str(path.resolve().relative_to(refdata.ROOT))
        except ValueError:
            display = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for lineno, line in enumerate(text.splitlines(), start=1):
            m = _HEAD.match(line)
            if not m:
                continue
            facts, rules = out.setdefault(m.group(1), ([], []))
            (rules if ":-" in line else facts).append(f"{display}:{lineno}")
    return out


def _doc_index(prog) -> dict[str, list[tuple[list[str], str]]]:
    """predicate name -> [(argument names, description)] of the ``%*! pred(Args) ... *%`` blocks
    of the program's rule files (the predicate docstrings of docs/reference.md)."""
    from ..rules import doc_blocks

    out: dict[str, list[tuple[list[str], str]]] = {}
    for name in prog.files:
        try:
            blocks = doc_blocks(Path(name))
        except OSError:
            continue
        for pred, args, _sig, text in blocks:
            out.setdefault(pred, []).append((args, text))
    return out


_DOCS: dict[int, dict] = {}


class Explainer:
    def __init__(self, solved, max_depth: int = MAX_DEPTH) -> None:
        self.solved = solved
        self.prog = solved.program
        self.ans = solved.answer
        self.ctx = solved.context
        self.max_depth = max_depth

    # -- where untagged predicates come from --------------------------------------------------
    def sources(self, pred: str, arity: int) -> tuple[str, list[str]]:
        """("fact" | "derived" | "", [file:line, ...]) of the statements that define pred/arity."""
        index = _DEFINED.get(id(self.prog))
        if index is None:
            index = _definition_index(self.prog)
            _DEFINED[id(self.prog)] = index
        facts, rules = index.get(pred, ([], []))
        if rules:
            return "derived", rules
        if facts:
            return "fact", facts
        return "", []

    # -- atoms in words ------------------------------------------------------------------------
    def _value_words(self, name: str, value, values: dict) -> str:
        from ..explain import plain
        from ..facts import Fn

        try:
            if name in ("A", "From", "Ref", "Source", "Subject", "Src") and isinstance(value, int):
                return self.ctx.ref(value)
            if name == "D" and isinstance(value, int) and isinstance(values.get("A"), int):
                return self.ctx.ref(Fn("d", (values["A"], value)))
            if isinstance(value, Fn) and value.name in ("d", "s", "dx", "auth", "ev"):
                return self.ctx.ref(value)
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        if isinstance(value, Fn) and value.name == "k" and len(value.args) == 5:
            return f"the {plain(value.args[3])} line"
        if isinstance(value, Fn) and value.name == "v" and len(value.args) == 5:
            return f"the dose group of day {plain(value.args[0])}" if value.args[0] else "the dose group of the date of service"
        if isinstance(value, Fn) and value.name == "w" and len(value.args) == 1:
            return "the discarded amount of " + self._value_words(name, value.args[0], values)
        if isinstance(value, Fn):
            return self.atom_text(value.name, value.args)
        return plain(value)

    def words(self, pred: str, args: Optional[tuple]) -> str:
        """The atom as a sentence: its docstring with the values filled in (the values it does not
        mention follow it), or, for a predicate without one, its name and values in words."""
        docs = _DOCS.get(id(self.prog))
        if docs is None:
            docs = _doc_index(self.prog)
            _DOCS[id(self.prog)] = docs
        args = tuple(args or ())
        cands = docs.get(pred, [])
        names, text = next(((n, t) for n, t in cands if len(n) == len(args)), (None, ""))
        if names is None:
            names = ["E", *(f"#{i}" for i in range(1, len(args)))] if args and isinstance(args[0], int) else \
                [f"#{i + 1}" for i in range(len(args))]
            text = ""
        values = dict(zip(names, args))
        shown = {n: self._value_words(n, v, values) for n, v in values.items() if n != "E"}
        text = re.split(r"(?<=[a-z0-9)])\. ", text, maxsplit=1)[0]  # the first sentence
        used: set[str] = set()

        def sub(m):
            used.add(m.group(0))
            return shown[m.group(0)]

        if text and shown:
            pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(re.escape(n) for n in sorted(shown, key=len, reverse=True)) + r")(?![A-Za-z0-9_(])")
            text = pattern.sub(sub, text)
        rest = [f"{n} = {v}" if not n.startswith("#") else v for n, v in shown.items() if n not in used]
        if not text:
            label = pred.replace("_", " ")
            return f"{label}: {', '.join(rest)}" if rest else label
        return f"{text.rstrip('.')}" + (f" ({'; '.join(rest)})" if rest else "")

    # -- atoms ---------------------------------------------------------------------------------
    def atom_text(self, pred: str, args: tuple) -> str:
        from ..engine import to_symbol
        from ..facts import Fn

        return str(to_symbol(Fn(pred, args))) if args else pred

    def classify(self, pred: str, args: Optional[tuple]) -> tuple[str, list[str]]:
        """(kind, input ids) of an atom without provenance records."""
        ctx = self.ctx
        refs: list[str] = []
        try:
            if pred in ADMIN_PREDS and args and len(args) >= 2 and isinstance(args[1], int):
                refs.append(ctx.ref(args[1]))
                return "input", refs
            if pred in DRUG_PREDS and args and len(args) >= 3 and all(isinstance(a, int) for a in args[1:3]):
                from ..facts import Fn

                refs.append(ctx.ref(Fn("d", (args[1], args[2]))))
                return "input", refs
            if pred in INDEXED_PREDS and args and len(args) >= 2 and isinstance(args[1], int):
                names = {"s": "services", "dx": "diagnoses", "auth": "authorizations", "ev": "evidence"}
                refs.append(f"{names[INDEXED_PREDS[pred]]}[{args[1] - 1}]")
                return "input", refs
        except (KeyError, IndexError):
            pass
        if pred in ENCOUNTER_PREDS:
            return "input", [ENCOUNTER_PREDS[pred]]
        if pred in PROFILE_PREDS:
            return "profile", []
        if pred.startswith(REFERENCE_PREFIXES):
            return "reference", []
        return "derived", []

    # -- tree ----------------------------------------------------------------------------------
    def node(self, pred: str, args: Optional[tuple], shown: Optional[str] = None, depth: int = 0,
             path: frozenset = frozenset()) -> dict:
        from ..explain import refs_in, render_text

        text = shown or self.atom_text(pred, args or ())
        out: dict[str, Any] = {"atom": text}
        if args is not None:
            try:
                out["words"] = self.words(pred, args)
            except Exception:  # noqa: BLE001 - words are a display aid; the atom stays
                pass
        if args is None:
            out["words"] = f"some {pred.replace('_', ' ')} fact matching the rule's pattern"
            out["kind"] = "pattern"
            out["note"] = "any matching atom (the rule uses an anonymous variable here)"
            return out
        key = (pred, tuple(args[1:]))
        records = self.ans.why.get(key, []) if args and isinstance(args[0], int) else []
        if not records:
            kind, refs = self.classify(pred, args)
            if kind == "derived":
                how, where = self.sources(pred, len(args))
                kind = how or "derived"
                if where:
                    out["at"] = where[:3] + (["..."] if len(where) > 3 else [])
            out["kind"] = kind
            if refs:
                out["input"] = refs
            return out
        out["kind"] = "rule"
        if key in path or depth >= self.max_depth:
            out["derivations"] = []
            out["note"] = "shown above" if key in path else "depth limit reached"
            return out
        derivations = []
        for number, values in sorted(records, key=lambda r: (self.prog.rules[r[0]].tag.id, r[0], repr(r[1]))):
            from ..engine import ground_literal

            rule = self.prog.rules[number]
            binding = dict(zip(rule.variables, values))
            children = []
            for lit in rule.body:
                try:
                    cpred, cargs, ctext = ground_literal(lit, binding)
                except Exception as exc:  # never let a display problem hide the rest of the tree
                    children.append({"atom": lit, "kind": "unparsed", "note": str(exc)})
                    continue
                children.append(self.node(cpred, cargs, ctext, depth + 1, path | {key}))
            derivations.append(
                {
                    "rule": rule.tag.id,
                    "text": render_text(rule, values, self.ctx),
                    "ref": rule.tag.ref,
                    "at": f"{rule.tag.file}:{rule.tag.line}",
                    "from": refs_in(values, rule, self.ctx),
                    "body": children,
                }
            )
        out["derivations"] = derivations
        return out

    # -- claim items ---------------------------------------------------------------------------
    def line_atoms(self) -> list[tuple[Any, list[tuple], list[tuple]]]:
        """(line key, charge atoms, charge_mod atoms) in claim line order (as render.py groups them)."""
        from ..render import _sort_key

        groups: dict[tuple, list[tuple]] = {}
        for key, code, units, source in self.ans.atoms.get("charge", []):
            groups.setdefault((key, self.ctx.date_of(source)), []).append((key, code, units, source))
        mods = self.ans.atoms.get("charge_mod", [])
        out = []
        for (key, _date), atoms in sorted(groups.items(), key=lambda kv: (_sort_key(kv[0][0]), kv[0][1])):
            atoms.sort(key=lambda a: _sort_key(a[3]))
            out.append((key, atoms, [m for m in mods if m[0] == key]))
        return out

    def explain_line(self, n: int) -> dict:
        items = self.line_atoms()
        if not 1 <= n <= len(items):
            raise click.UsageError(f"--line {n}: the claim has {len(items)} line(s)")
        key, atoms, mods = items[n - 1]
        line = self.solved.claim.lines[n - 1]
        e = self.ctx.number
        nodes = [self.node("charge", (e, *a)) for a in atoms]
        nodes += [self.node("charge_mod", (e, *m)) for m in mods]
        # a line that adds up several administrations (one drug code and date): one node each
        nodes += [self.node("line_from", (e, k, ref)) for k, ref in self.ans.atoms.get("line_from", []) if k == key]
        title = f"line {n}: {line.code}{('-' + '-'.join(line.modifiers)) if line.modifiers else ''} x{line.units}"
        return {"item": "line", "number": n, "title": title, "rule": line.why.rule, "tree": nodes}

    def explain_not_billed(self, n: int) -> dict:
        from ..render import _sort_key

        raw = sorted(self.ans.atoms.get("not_billed", []), key=lambda a: (_sort_key(a[0]), a[1]))
        if not 1 <= n <= len(raw):
            raise click.UsageError(f"--not-billed {n}: the claim has {len(raw)} rejected candidate(s)")
        subject, cand = raw[n - 1]
        nb = self.solved.claim.not_billed[n - 1]
        return {"item": "not_billed", "number": n, "title": f"not billed {n}: {cand} for {nb.subject}",
                "rule": nb.why.rule, "tree": [self.node(self._not_billed_pred(subject, cand), (self.ctx.number, subject, cand))]}

    def _not_billed_pred(self, subject, cand) -> str:
        """not_billed, or payer_drop when a payer rule took the code off (its rule is the reason)."""
        if not self.ans.why.get(("not_billed", (subject, cand))) and self.ans.why.get(("payer_drop", (subject, cand))):
            return "payer_drop"
        return "not_billed"

    def explain_finding(self, n: int) -> dict:
        from ..render import SEVERITY_ORDER, _name, _sort_key

        raw = sorted(self.ans.atoms.get("finding", []),
                     key=lambda a: (SEVERITY_ORDER.get(_name(a[1]), 9), a[0], _sort_key(a[2])))
        if not 1 <= n <= len(raw):
            raise click.UsageError(f"--finding {n}: the claim has {len(raw)} finding(s)")
        code, sev, subject = raw[n - 1]
        f = self.solved.claim.findings[n - 1]
        return {"item": "finding", "number": n, "title": f"finding {n}: {_name(sev)} {code} ({f.subject})",
                "rule": f.why.rule, "tree": [self.node("finding", (self.ctx.number, code, sev, subject))]}

    def explain_why_not(self, code: str, subject: Optional[str]) -> dict:
        """Why CODE is not on the claim (for the input item SUBJECT, an id such as ``a1``): the
        rejected candidates of that code explained, or the line that bills it, or a statement that
        no rule considered it, with what the item became instead."""
        from ..render import _sort_key

        def about(ref: str) -> bool:
            return subject is None or ref == subject or ref.startswith(subject + ".") or ref.startswith(subject + "[")

        c = self.solved.claim
        raw = sorted(self.ans.atoms.get("not_billed", []), key=lambda a: (_sort_key(a[0]), a[1]))
        hits = [i for i, (nb, (_s, cand)) in enumerate(zip(c.not_billed, raw), start=1)
                if nb.candidate == code and about(nb.subject)]
        target = f"{code}" + (f" for {subject}" if subject else "")
        if hits:
            trees = [self.explain_not_billed(i) for i in hits]
            return {"item": "why_not", "title": f"why not {target}: considered and not billed ({len(hits)})",
                    "answer": "not_billed", "items": trees}
        billed = [n for n, line in enumerate(c.lines, start=1)
                  if line.code == code and (subject is None or any(about(r) for r in line.why.from_))]
        if billed:
            return {"item": "why_not", "title": f"why not {target}: it is billed, claim line(s) {', '.join(map(str, billed))}",
                    "answer": "billed", "items": [self.explain_line(n) for n in billed]}
        other = [n for n, line in enumerate(c.lines, start=1) if line.code == code]
        note = (f"{code} is billed on line(s) {', '.join(map(str, other))}, but not for {subject}"
                if other else f"no rule considered {code}" + (f" for {subject}" if subject else "") +
                ": the engine never proposed it, so no rule rejected it either (a code outside the rules' reach, "
                "or an input that does not lead to it)")
        became = []
        if subject:
            became = [f"line {n}: {line.code} x{line.units} [{line.why.rule}]" for n, line in enumerate(c.lines, start=1)
                      if any(about(r) for r in line.why.from_)]
            became += [f"not billed: {nb.candidate} [{nb.why.rule}]" for nb in c.not_billed if about(nb.subject)]
        return {"item": "why_not", "title": f"why not {target}: {note}", "answer": "not_considered", "items": [],
                "instead": became}

    def explain_all(self) -> list[dict]:
        c = self.solved.claim
        return ([self.explain_line(i) for i in range(1, len(c.lines) + 1)]
                + [self.explain_not_billed(i) for i in range(1, len(c.not_billed) + 1)]
                + [self.explain_finding(i) for i in range(1, len(c.findings) + 1)])


# --------------------------------------------------------------------------------------------
# text rendering

KIND_WORDS = {
    "input": "input",
    "reference": "reference data (facts/)",
    "profile": "payer profile",
    "derived": "derived by an untagged rule",
    "fact": "fact in the rules",
    "pattern": "pattern",
    "unparsed": "not shown",
}


def render_tree(item: dict, atoms: bool = False) -> str:
    out = [item["title"]]
    nodes = item["tree"]
    for i, node in enumerate(nodes):
        _render_node(node, "", i == len(nodes) - 1, out, atoms)
    return "\n".join(out)


def _label(node: dict, atoms: bool) -> str:
    words = node.get("words")
    if not words:
        return node["atom"]
    return f"{words}  <{node['atom']}>" if atoms else words


def _render_node(node: dict, prefix: str, last: bool, out: list[str], atoms: bool = False) -> None:
    branch = "└─ " if last else "├─ "
    cont = prefix + ("   " if last else "│  ")
    kind = node.get("kind")
    if kind == "rule":
        out.append(f"{prefix}{branch}{_label(node, atoms)}")
        if node.get("note"):
            out.append(f"{cont}({node['note']})")
        ders = node.get("derivations", [])
        for j, d in enumerate(ders):
            if len(ders) > 1:
                out.append(f"{cont}derivation {j + 1} of {len(ders)}:")
            out.append(f"{cont}rule {d['rule']}  ({d['at']})")
            out.append(f"{cont}  \"{d['text']}\"")
            if d["ref"]:
                out.append(f"{cont}  source: {d['ref']}")
            body = d["body"]
            for k, child in enumerate(body):
                _render_node(child, cont, k == len(body) - 1, out, atoms)
    else:
        detail = node.get("input") or node.get("at")
        extra = f"  [{KIND_WORDS.get(kind, kind)}" + (f": {', '.join(detail)}" if detail else "") + "]"
        out.append(f"{prefix}{branch}{_label(node, atoms)}{extra}")
        if node.get("note") and kind != "pattern":
            out.append(f"{cont}({node['note']})")


# --------------------------------------------------------------------------------------------
# the command


@click.command("explain")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--line", "line", type=int, metavar="N", help="Explain claim line N.")
@click.option("--not-billed", "not_billed", type=int, metavar="N", help="Explain the N-th rejected candidate.")
@click.option("--finding", "finding", type=int, metavar="N", help="Explain the N-th finding.")
@click.option("--why-not", "why_not", default=None, metavar="CODE",
              help="Why CODE is not on the claim (or is): its rejected candidates explained, or the line that bills it.")
@click.option("--for", "for_item", default=None, metavar="ID", help="With --why-not: only for this input item (e.g. a1).")
@click.option("--atoms", is_flag=True, help="Also print the internal atom of every node (for rule authors).")
@click.option("--json", "as_json", is_flag=True, help="Print the trees as JSON.")
@policy_option()
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Extra rule file (repeatable).")
@switch_option("Turn on one policy switch (repeatable).")
@click.option("--depth", type=int, default=MAX_DEPTH, show_default=True, help="Deepest level of the tree.")
@click.option("--from", "source", type=click.Choice(["native", "fhir"]), default="native", show_default=True,
              help="Input format: the contract's encounter, or a FHIR R4 Bundle (JSON).")
@site_option
@limit_options
def explain(file: str, line: Optional[int], not_billed: Optional[int], finding: Optional[int], as_json: bool,
            policy: str, rules: tuple[str, ...], switches: tuple[str, ...], depth: int, source: str = "native",
            site: Optional[str] = None, why_not: Optional[str] = None, for_item: Optional[str] = None,
            atoms: bool = False, time_limit=None, memory_limit=None) -> None:
    """Show the derivation behind a claim line, a rejected candidate or a finding as a tree:
    rule id, its sentence, the facts it used, down to the input items. Without --line,
    --not-billed or --finding, every item of the claim is explained."""
    from ..cases import solve_detailed
    from ..engine import EncodingError, StrictModeError
    from ..limits import LimitExceeded
    from ..load import InputError, safe_text

    check_policy(policy)
    check_switches(switches, policy)
    try:
        loaded = load_input(file, source, site)
        solved = solve_detailed([loaded], policy=policy, rules=rules, switches=[switches],
                                limits=make_limits(time_limit, memory_limit))[0]
    except InputError as exc:
        _fail_input(exc)
        sys.exit(2)
    except LimitExceeded as exc:
        fail_limit(exc)
    except (EncodingError, StrictModeError, ValueError) as exc:
        click.echo(f"error: {safe_text(exc)}", err=True)
        sys.exit(2)
    if for_item is not None and why_not is None:
        click.echo("error: --for needs --why-not CODE", err=True)
        sys.exit(2)
    ex = Explainer(solved, max_depth=depth)
    if why_not is not None:
        item = ex.explain_why_not(why_not.strip().upper(), for_item)
        if as_json:
            click.echo(json.dumps(item, indent=2, ensure_ascii=False, default=str))
            return
        out = [item["title"]]
        out += [f"  instead: {x}" for x in item.get("instead", [])]
        out += [render_tree(it, atoms) for it in item["items"]]
        click.echo(safe_text("\n\n".join(out) if item["items"] else "\n".join(out)))
        return
    if line is not None:
        items = [ex.explain_line(line)]
    elif not_billed is not None:
        items = [ex.explain_not_billed(not_billed)]
    elif finding is not None:
        items = [ex.explain_finding(finding)]
    else:
        items = ex.explain_all()
    if as_json:
        click.echo(json.dumps(items if line is None and not_billed is None and finding is None else items[0],
                              indent=2, ensure_ascii=False, default=str))
        return
    click.echo(safe_text("\n\n".join(render_tree(it, atoms) for it in items)))
