"""Issue #15, safety of rule files on top of the standard rules: every hazard a rule author met is
reproduced here and must now fail cleanly (exit status 2 or 3, file:line, no traceback).

Namespaces, one answer, limits, clingo's own messages and unsatisfiable programs, strict case
files, policy packages outside the repository, payers by name and plan, payer_drop/3."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oncologic import engine
from oncologic.cli import main
from oncologic.limits import EXIT_LIMIT, LimitExceeded, Limits
from oncologic.load import load_file, validate
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed_session.yaml"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _solve(*args: str):
    return CliRunner().invoke(main, ["solve", str(SEED), *args])


def _seed_doc() -> dict:
    return yaml.safe_load(SEED.read_text())


# ------------------------------------------------------------------------------------------
# namespaces


HELPER = """
% my helper: every administration counts 15 minutes
dur(E,A,15) :- admin(E,A).
"""


def test_helper_named_like_an_engine_predicate_is_an_error_naming_file_line_and_predicate(tmp_path):
    rule = _write(tmp_path / "helper.lp", HELPER)
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2, result.output
    assert f"{rule}:2:1: dur/3 is an engine-internal predicate" in result.output
    assert "encodings/admin/timing.lp" in result.output  # where the engine defines it
    assert "%@override dur/3" in result.output
    assert "Traceback" not in result.output


def test_the_hazard_is_real_an_override_on_purpose_changes_the_seed_claim(tmp_path):
    # the same helper, declared as an override, is accepted and rewrites the claim (96413 -> 96409
    # and more): this is what used to happen silently, with exit status 0
    plain = code_encounters([load_file(str(SEED))])[0]
    rule = _write(tmp_path / "helper.lp", "%@override dur/3\n" + HELPER)
    changed = code_encounters([load_file(str(SEED))], rules=[rule])[0]
    assert [ln.code for ln in plain.lines] != [ln.code for ln in changed.lines]
    assert "96409" in [ln.code for ln in changed.lines]


@pytest.mark.parametrize(
    "text, predicate",
    [
        ('route(E,A,iv_push) :- admin(E,A).', "route/3"),  # an input
        ('mue("2026Q1",office,"J9263",1,3).', "mue/5"),  # a reference table
        ('charge(E,k(1,0,9,"96413",0),"96413",1,enc) :- encounter(E).', "charge/5"),  # a claim output
    ],
)
def test_inputs_reference_tables_and_claim_outputs_are_engine_internal(tmp_path, text, predicate):
    rule = _write(tmp_path / "mine.lp", text + "\n")
    with pytest.raises(engine.EncodingError, match=f"mine.lp:1:1: {predicate} is an engine-internal predicate"):
        engine.load_program([rule])


def test_extension_points_and_own_predicates_are_accepted(tmp_path):
    rule = _write(tmp_path / "mine.lp", """
        my_long(E,A) :- dur(E,A,M), M > 120.
        policy_on(hydration_segments_separate).
        pa_code(commercial,"J9263").
        %@rule mine.long
        %@text "{A:adm} ran long."
        finding(E,"MINE_LONG",info,A) :- my_long(E,A).
    """)
    claim = code_encounters([load_file(str(SEED))], rules=[rule])[0]
    assert [f.subject for f in claim.findings if f.code == "MINE_LONG"] == ["oxali"]
    assert {"policy_on", "pa_code", "finding", "payer_drop"} <= {n for n, _a in engine.extension_points()}


def test_override_pragma_is_checked(tmp_path):
    unknown = _write(tmp_path / "a.lp", "%@override no_such/2\nno_such(1,2).\n")
    with pytest.raises(engine.EncodingError, match=r"a.lp:1: %@override no_such/2: the standard rules have no predicate"):
        engine.load_program([unknown])
    extension = _write(tmp_path / "b.lp", "%@override pa_code/2\npa_code(commercial,\"J9263\").\n")
    with pytest.raises(engine.EncodingError, match="is an extension point"):
        engine.load_program([extension])


def test_a_finding_needs_its_sentence(tmp_path):
    rule = _write(tmp_path / "f.lp", 'finding(E,"X",info,enc) :- encounter(E).\n')
    with pytest.raises(engine.EncodingError, match="f.lp:1:1: a rule deriving finding/4 needs %@rule and %@text"):
        engine.load_program([rule])


# ------------------------------------------------------------------------------------------
# one answer


@pytest.mark.parametrize(
    "text, message",
    [
        ("{ my_pick(E,A) : admin(E,A) } = 1 :- encounter(E).", "a choice rule"),
        ("my_a(E) ; my_b(E) :- encounter(E).", "a disjunction"),
        ("my_a(E) : admin(E,_) :- encounter(E).", "a disjunction or a conditional head"),
        ("#count { A : my_a(A) } = 1 :- encounter(E).", "an aggregate in a rule head"),
        ("#minimize { 1,A : admin(E,A) }.", "#minimize/#maximize"),
        (":~ admin(E,A). [1@1,E,A]", "weak constraints"),
        ("#show dur/3.", "a rule file may show only predicates it defines itself"),
        ('#show finding(1,"X",error,enc).', "#show of a term is not allowed"),
        ("#external my_x.", "#external is not allowed"),
    ],
)
def test_choices_and_optimisation_are_rejected_with_file_line(tmp_path, text, message):
    rule = _write(tmp_path / "pick.lp", "% line 1\n" + text + "\n")
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2, result.output
    assert f"{rule}:2:" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_a_program_with_two_answers_is_an_error_not_an_arbitrary_claim(tmp_path):
    # plain rules that pass every static check, but an even loop through negation: two models
    rule = _write(tmp_path / "loop.lp", """
        my_a(E) :- encounter(E), not my_b(E).
        my_b(E) :- encounter(E), not my_a(E).
        %@rule mine.picked
        %@text "picked"
        finding(E,"PICKED",warning,enc) :- my_a(E).
    """)
    with pytest.raises(engine.SecondModelError, match="more than one answer"):
        code_encounters([load_file(str(SEED))], rules=[rule])
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2 and "more than one answer" in result.output and "loop.lp" in result.output


# ------------------------------------------------------------------------------------------
# clingo's own messages, unsatisfiable programs


def test_unsafe_variables_reach_the_user_with_file_line(tmp_path):
    rule = _write(tmp_path / "unsafe.lp", """
        %@rule mine.unsafe
        %@text "x"
        finding(E,"X",warning,A) :- encounter(E).
    """)
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2, result.output
    assert f"{rule}:3:" in result.output and "unsafe" in result.output and "'A' is unsafe" in result.output
    assert "_why" not in result.output and "Traceback" not in result.output


def test_an_unsatisfiable_program_names_the_constraint_that_fired(tmp_path):
    rule = _write(tmp_path / "never.lp", """
        % no IV infusion, ever
        %@rule mine.no_iv_infusion
        %@text "an IV infusion is not allowed here"
        :- admin(E,A), route(E,A,iv_infusion).
        :- admin(E,A), route(E,A,iv_push), my_never(E).
        my_never(0).
    """)
    with pytest.raises(engine.UnsatisfiableError) as info:
        code_encounters([load_file(str(SEED))], rules=[rule])
    message = str(info.value)
    assert f"{rule}:4 [rule mine.no_iv_infusion]" in message
    assert f"{rule}:5" not in message  # the constraint that did not fire is not named
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2 and "mine.no_iv_infusion" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------
# limits

UNBOUNDED = "my_n(E) :- encounter(E).\nmy_n(X+1) :- my_n(X).\n"


def test_an_unbounded_rule_ends_at_the_memory_limit_with_exit_3(tmp_path):
    rule = _write(tmp_path / "unbounded.lp", UNBOUNDED)
    result = _solve("--rules", str(rule), "--memory-limit", "250", "--time-limit", "120")
    assert result.exit_code == EXIT_LIMIT, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "memory limit of 250 MB" in lines[0] and str(rule) in lines[0]


def test_an_unbounded_rule_ends_at_the_time_limit_with_exit_3(tmp_path):
    rule = _write(tmp_path / "unbounded.lp", UNBOUNDED)
    result = CliRunner().invoke(main, ["explain", str(SEED), "--rules", str(rule), "--time-limit", "1.5",
                                       "--memory-limit", "2000"])
    assert result.exit_code == EXIT_LIMIT, result.output
    assert "time limit of 1.5 s" in result.output and "unbounded.lp" in result.output


def test_the_python_api_raises_limit_exceeded(tmp_path):
    rule = _write(tmp_path / "unbounded.lp", UNBOUNDED)
    with pytest.raises(LimitExceeded) as info:
        code_encounters([load_file(str(SEED))], rules=[rule], limits=Limits(time_s=60, memory_mb=250))
    assert info.value.limit == "memory"
    # the process that asked is unharmed and codes the next batch
    assert code_encounters([load_file(str(SEED))])[0].lines


def test_the_limits_hold_while_another_thread_runs(tmp_path):
    # a test runner's or a pool's helper thread once made the solve run in-process, without
    # limits: the unbounded rule then took 8 GB of the machine
    import threading

    rule = _write(tmp_path / "unbounded.lp", UNBOUNDED)
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    try:
        with pytest.raises(LimitExceeded):
            code_encounters([load_file(str(SEED))], rules=[rule], limits=Limits(time_s=30, memory_mb=250))
    finally:
        stop.set()
        helper.join()


def test_oncologic_test_and_the_pytest_plugin_stop_at_a_limit_with_one_line(tmp_path):
    import subprocess
    import sys

    rule = _write(tmp_path / "cases" / "unbounded.lp", UNBOUNDED)
    _write(tmp_path / "cases" / "c.yaml", f"""
        - name: runs forever
          rules_files: [{rule.name}]
          encounter_file: {SEED}
          expect: {{clean: true}}
    """)
    result = CliRunner().invoke(main, ["test", str(tmp_path / "cases"), "--memory-limit", "250"])
    assert result.exit_code == EXIT_LIMIT, result.output
    assert "memory limit of 250 MB" in result.output and "Traceback" not in result.output
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--oncologic-memory-limit", "250", str(tmp_path / "cases")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "c.yaml::runs forever: the memory limit of 250 MB was reached" in run.stdout
    assert "Traceback" not in run.stdout


# ------------------------------------------------------------------------------------------
# case files


def test_a_misspelled_case_key_is_an_error(tmp_path):
    from oncologic.cases import CaseFileError, load_cases

    bad = _write(tmp_path / "cases" / "c.yaml", f"""
        - name: misspelled policy
          polcy: commercial_ibx_style
          encounter_file: {SEED}
          expect: {{clean: true}}
    """)
    with pytest.raises(CaseFileError, match="unknown key.*polcy"):
        load_cases(bad)
    top = _write(tmp_path / "cases" / "d.yaml", f"""
        polcy: commercial_ibx_style
        cases:
        - name: x
          encounter_file: {SEED}
          expect: {{clean: true}}
    """)
    with pytest.raises(CaseFileError, match="unknown key.*polcy"):
        load_cases(top)
    entry = _write(tmp_path / "cases" / "e.yaml", f"""
        - name: x
          encounter_file: {SEED}
          expect: {{findings: [{{code: PLAN_MISSING, sevrity: warning}}]}}
    """)
    with pytest.raises(CaseFileError, match=r"expect.findings\[0\]: unknown key.*sevrity"):
        load_cases(entry)


def test_unknown_encounter_keys_and_rule_ids_fail_the_case(tmp_path):
    from oncologic.cases import load_cases, run_cases

    doc = _seed_doc()
    doc["administrations"][0]["stpo"] = "09:00"
    path = _write(tmp_path / "cases" / "c.yaml", "")
    path.write_text(yaml.safe_dump([
        {"name": "typo in the encounter", "encounter": doc, "expect": {"clean": True}},
        {"name": "unknown rule id", "encounter_file": str(SEED), "expect": {"rules": ["admin.inital"], "not_rules": ["no.such"]}},
    ]))
    typo, rule = run_cases(load_cases(path))
    assert any("administrations[0].stpo: unknown key" in f for f in typo.failures), typo.failures
    assert any("unknown rule id(s) admin.inital" in f for f in rule.failures), rule.failures
    assert any("unknown rule id(s) no.such" in f for f in rule.failures), rule.failures


def test_no_findings_can_be_limited_to_a_subject(tmp_path):
    from oncologic.cases import load_cases, run_cases

    path = _write(tmp_path / "cases" / "c.yaml", f"""
        - name: not on enc (it is on plan)
          encounter_file: {SEED}
          expect:
            findings: [{{code: PLAN_MISSING, subject: plan}}]
            no_findings: [{{code: PLAN_MISSING, subject: enc}}]
        - name: on plan
          encounter_file: {SEED}
          expect:
            no_findings: [{{code: PLAN_MISSING, subject: plan}}]
    """)
    other, same = run_cases(load_cases(path))
    assert other.ok, other.failures
    assert not same.ok and "PLAN_MISSING for plan must not be raised" in same.failures[0]


# ------------------------------------------------------------------------------------------
# policy packages, payers by name and plan, payer_drop/3


def _package(root: Path) -> Path:
    """A policy package outside the repository: its rules, a payer list keyed by plan, its own
    switch, and its own cases."""
    pkg = root / "acme_policy"
    _write(pkg / "rules.lp", """
        %# Policy package acme_policy (test): Acme Health does not pay 96367 after chemotherapy
        % Reads: policy/2, charge/5, payer_name/2. Writes: payer_drop/3.
        % Source: an invented payer rule for this test.
        acme_claim(E) :- payer_name(E,"Acme Health").
        %@rule acme.no_sequential_infusion
        %@text "{A:adm}: Acme Health does not pay a sequential infusion on a chemotherapy day (Acme manual 4.2)."
        %@ref "Acme Health provider manual 4.2 (test)"
        payer_drop(E,A,"96367") :- acme_claim(E), policy(E,acme_no_sequential), charge(E,_,"96367",_,A).
    """)
    _write(pkg / "payers" / "acme_pa.lp", """
        % Acme Gold PPO's prior-authorization list (test).
        pa_profile(plan("Acme Gold PPO"),"Acme Gold PPO list (test)").
        pa_code(plan("Acme Gold PPO"),"J0640").
    """)
    _write(pkg / "cases" / "acme.yaml", f"""
        lines_filter: "963*"
        cases:
        - name: acme switch on - 96367 goes off the claim with Acme's sentence
          policy: ..
          switches: [acme_no_sequential]
          encounter_file: {SEED}
          encounter: {{payer: {{name: Acme Health, type: commercial, member_id: X1}}}}
          expect:
            absent: ["96367"]
            not_billed: [{{subject: premed, candidate: "96367", rule: acme.no_sequential_infusion, text_contains: "Acme manual 4.2"}}]
            rules: [acme.no_sequential_infusion]
        - name: acme switch off - 96367 stays
          policy: ..
          encounter_file: {SEED}
          encounter: {{payer: {{name: Acme Health, type: commercial, member_id: X1}}}}
          expect:
            include_lines: [{{code: "96367"}}]
            not_rules: [acme.no_sequential_infusion]
        - name: another commercial payer with the switch on - 96367 stays
          policy: ..
          switches: [acme_no_sequential]
          encounter_file: {SEED}
          encounter: {{payer: {{name: Other Health, type: commercial, member_id: X1}}}}
          expect:
            include_lines: [{{code: "96367"}}]
    """)
    return pkg


def test_a_policy_package_outside_the_repository_runs_its_own_cases(tmp_path):
    pkg = _package(tmp_path)
    result = CliRunner().invoke(main, ["test", str(pkg / "cases")])
    assert result.exit_code == 0, result.output
    assert "OK: 3 passed" in result.output


def test_a_policy_package_switch_is_accepted_by_solve_and_unknown_ones_still_fail(tmp_path):
    pkg = _package(tmp_path)
    doc = _seed_doc()
    doc["payer"] = {"name": "Acme Health", "type": "commercial", "member_id": "X1"}
    enc = tmp_path / "acme.yaml"
    enc.write_text(yaml.safe_dump(doc))
    ok = CliRunner().invoke(main, ["solve", str(enc), "--policy", str(pkg), "--switch", "acme_no_sequential", "--json"])
    assert ok.exit_code == 0, ok.output
    assert "acme.no_sequential_infusion" in ok.output
    without = CliRunner().invoke(main, ["solve", str(enc), "--switch", "acme_no_sequential"])
    assert without.exit_code == 2 and "unknown policy switch" in without.output and "acme_no_sequential" in without.output
    missing = CliRunner().invoke(main, ["solve", str(enc), "--policy", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_a_payer_list_keyed_by_plan_applies_to_that_plan_only(tmp_path):
    from oncologic.formats.site import load_site

    pkg = _package(tmp_path)
    site_file = _write(tmp_path / "site.toml", """
        [payers]
        "Acme Health" = { type = "commercial", plan = "Acme Gold PPO" }
    """)
    site = load_site(str(site_file))
    acme, other = _seed_doc(), _seed_doc()
    acme["payer"] = {"name": "Acme Health", "type": "commercial", "member_id": "X1"}
    other["payer"] = {"name": "Other Health", "type": "commercial", "member_id": "X2"}
    claims = code_encounters([validate(copy.deepcopy(acme), site=site), validate(copy.deepcopy(other), site=site)], policy=str(pkg))
    texts = [[f.message for f in c.findings if f.code == "PA_MISSING"] for c in claims]
    assert any("Acme Gold PPO list" in t and "J0640" in t for t in texts[0]), texts[0]
    assert not any("Acme Gold PPO list" in t for t in texts[1]), texts[1]


def test_a_payer_drop_rule_needs_its_sentence(tmp_path):
    rule = _write(tmp_path / "drop.lp", 'payer_drop(E,A,"96367") :- charge(E,_,"96367",_,A).\n')
    result = _solve("--rules", str(rule))
    assert result.exit_code == 2 and "payer_drop/3 needs %@rule and %@text" in result.output


def test_payer_drop_for_the_whole_encounter_takes_every_line_of_the_code(tmp_path):
    rule = _write(tmp_path / "drop.lp", """
        %@rule mine.no_leucovorin
        %@text "This payer does not pay {C} (leucovorin) on this claim."
        payer_drop(E,enc,C) :- encounter(E), C = "J0640".
    """)
    claim = code_encounters([load_file(str(SEED))], rules=[rule])[0]
    assert "J0640" not in [ln.code for ln in claim.lines]
    [nb] = [nb for nb in claim.not_billed if nb.candidate == "J0640"]
    assert nb.subject == "enc" and nb.why.rule == "mine.no_leucovorin" and "does not pay J0640" in nb.why.text


def test_dropping_a_primary_leaves_its_add_on_flagged_without_the_trial_sentence(tmp_path):
    rule = _write(tmp_path / "drop.lp", """
        %@rule mine.no_chemo_initial
        %@text "This payer does not take {C} on this claim (test)."
        payer_drop(E,enc,C) :- encounter(E), C = "96413".
    """)
    claim = code_encounters([load_file(str(SEED))], rules=[rule])[0]
    assert "96413" not in [ln.code for ln in claim.lines]
    rules = {f.why.rule for f in claim.findings if f.code == "ADDON_WITHOUT_PRIMARY"}
    assert rules == {"guard.addon_without_primary"}, rules
    assert not claim.clean


def test_payer_plan_facts_from_the_site_entry_or_a_plan_named_payer(tmp_path):
    from oncologic.facts import encounter_facts
    from oncologic.formats.site import load_site

    site = load_site(str(_write(tmp_path / "site.toml", """
        [payers]
        "ACME HEALTH" = { type = "commercial", plan = "Acme Gold PPO" }
    """)))
    by_name, by_plan = _seed_doc(), _seed_doc()
    by_name["payer"] = {"name": "Acme Health", "type": "commercial"}  # matched ignoring case
    by_plan["payer"] = {"name": "Acme Gold PPO", "type": "commercial"}  # a FHIR bundle names the plan
    for doc in (by_name, by_plan):
        facts, _ctx = encounter_facts(validate(doc, site=site), 1)
        assert ("payer_plan", (1, "Acme Gold PPO")) in facts
        assert ("payer_name", (1, doc["payer"]["name"])) in facts
    facts, _ctx = encounter_facts(validate(_seed_doc()), 1)
    assert not [f for f in facts if f[0] == "payer_plan"]


def test_oncologic_rules_lists_a_policy_package(tmp_path):
    pkg = _package(tmp_path)
    result = CliRunner().invoke(main, ["rules", "--policy", str(pkg)])
    assert result.exit_code == 0, result.output
    assert "acme.no_sequential_infusion" in result.output


def test_coverage_counts_a_policy_package_rules(tmp_path):
    pkg = _package(tmp_path)
    out = tmp_path / "coverage.json"
    result = CliRunner().invoke(main, ["test", str(pkg / "cases"), "--coverage-json", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "acme.no_sequential_infusion" in text and "rules.lp" in text
