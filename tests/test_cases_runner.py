"""The case-file runner (oncologic.cases) and its pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from oncologic.cases import known_switches, load_cases, run_cases, select

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed_session.yaml"



def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(path: Path):
    return run_cases(load_cases(path))


def test_list_format_and_mapping_defaults(tmp_path):
    path = _write(tmp_path, """
        policy: medicare
        lines_filter: "96*"
        cases:
        - name: short chemo infusion is a push
          encounter:
            id: E1
            setting: facility
            date_of_service: 2026-03-04
            diagnoses: [C34.11]
            administrations:
              - {id: a1, route: iv_infusion, start: "09:00", stop: "09:15",
                 drugs: [{hcpcs: J9271, dose: {value: 200, unit: mg}}]}
          expect:
            lines: [{code: "96409", units: 1}]
            rules: [time.short_infusion_is_push]   # an intermediate rule (method/3) counts
    """)
    (out,) = _run(path)
    assert out.ok, out.failures
    assert "time.short_infusion_is_push" in out.fired


def test_a_wrong_expectation_fails_with_a_line_diff(tmp_path):
    path = _write(tmp_path, f"""
        - name: wrong
          encounter_file: {SEED}
          expect:
            lines_filter: "96*"
            lines: [{{code: "96413", units: 1}}, {{code: "96417", units: 1}}]
            absent: ["96368"]
            rules: [no.such_rule]
    """)
    (out,) = _run(path)
    text = "\n".join(out.failures)
    assert "- expected  code=96417" in text
    assert "+ line  2  code=96367" in text and "[admin.sequential_infusion]" in text
    assert "code 96368 must not be billed" in text
    assert "rule no.such_rule did not fire" in text


def test_input_error_cases(tmp_path):
    path = _write(tmp_path, """
        - name: stop before start is rejected
          encounter: {id: E, setting: office, date_of_service: 2026-03-04, diagnoses: [C34.11],
                      administrations: [{id: a1, route: iv_push, start: "10:00", stop: "09:00"}]}
          error: "administrations[0].stop"
        - name: a valid encounter expected to fail is a failure
          encounter_file: %s
          error: "anything"
    """ % SEED)
    first, second = _run(path)
    assert first.ok, first.failures
    assert not second.ok and "input accepted" in second.failures[0]


def test_skips_and_unknown_switches(tmp_path):
    path = _write(tmp_path, f"""
        - name: later rule
          requires_rules: [drug.not_written_yet]
          encounter_file: {SEED}
          expect: {{clean: true}}
        - name: later switch
          requires_switches: [not_a_switch_yet]
          encounter_file: {SEED}
          expect: {{clean: true}}
        - name: typo in a switch
          switches: [label_hydration_integrall]
          encounter_file: {SEED}
          expect: {{clean: true}}
        - name: explicit skip
          skip: waiting for the coding team
          encounter_file: {SEED}
          expect: {{clean: true}}
    """)
    a, b, c, d = _run(path)
    assert a.skipped and "drug.not_written_yet" in a.skipped and a.ok
    assert b.skipped and "not_a_switch_yet" in b.skipped
    assert not c.ok and "unknown policy switch" in c.failures[0]
    assert d.skipped == "waiting for the coding team"


def test_contains_keys_and_unknown_expect_keys(tmp_path):
    path = _write(tmp_path, f"""
        - name: text contains
          encounter_file: {SEED}
          expect:
            include_lines: [{{code: "96415", text_contains: "150 minutes"}}]
            not_billed: [{{candidate: "96415", text_contains: "NOT IN THE TEXT"}}]
    """)
    (out,) = _run(path)
    assert len(out.failures) == 1 and "missing not_billed" in out.failures[0]
    bad = _write(tmp_path, f"""
        - name: typo
          encounter_file: {SEED}
          expect: {{line: []}}
    """, "bad.yaml")
    try:
        load_cases(bad)
    except Exception as exc:  # CaseFileError
        assert "unknown expect key" in str(exc)
    else:
        raise AssertionError("a typo in expect: must be reported")


def test_select_by_keyword(tmp_path):
    path = _write(tmp_path, f"""
        - {{name: alpha one, encounter_file: {SEED}, expect: {{clean: true}}}}
        - {{name: beta two, encounter_file: {SEED}, expect: {{clean: true}}}}
    """)
    cases = load_cases(path)
    assert [c.name for c in select(cases, ["ALPHA"])] == ["alpha one"]
    assert [c.name for c in select(cases, ["not alpha"])] == ["beta two"]
    assert len(select(cases, [])) == 2


def test_known_switches_cover_the_encodings():
    assert {"label_hydration_integral", "hydration_segments_separate", "concurrent_chemo_unlisted",
            "distinct_modifier_59", "discontinued_modifier_53"} <= known_switches()


def test_pytest_plugin_collects_a_users_cases_folder(tmp_path):
    _write(tmp_path, f"""
        - {{name: passes, encounter_file: {SEED}, expect: {{clean: true}}}}
        - name: fails
          encounter_file: {SEED}
          expect: {{lines_filter: "96*", lines: [{{code: "96413"}}]}}
        - {{name: skipped, skip: later, encounter_file: {SEED}, expect: {{clean: true}}}}
    """)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "cases")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "1 failed, 1 passed, 1 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert "claim lines differ" in proc.stdout and "reproduce: oncologic test" in proc.stdout
