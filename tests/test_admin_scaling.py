"""Ground size of an encounter with many administrations grows linearly (issue #16).

A deterministic size test, not a timing test: the number of ground atoms of
``pathological(n)`` (n pushes of one drug through one port) at n = 200 and 400. Before the
push order was walked once per class (encodings/admin/sequence.lp, push_latest/5), pair/3,
same_infusate/3 and precedes/3 were quadratic in the pushes and the ratio was about 3.5.
"""

import pytest

from admin_scaling import ground_size  # benchmarks/admin_scaling.py (pytest pythonpath)


@pytest.mark.parametrize("setting", ["office", "facility"])
def test_ground_size_is_linear_in_the_pushes(setting):
    small = ground_size(200, setting)
    large = ground_size(400, setting)
    assert large["atoms"] / small["atoms"] < 2.3, (small["per"].most_common(5), large["per"].most_common(5))
    # no predicate grows faster than the pushes themselves
    for sig, k in large["per"].items():
        assert k <= 2.3 * max(small["per"].get(sig, 0), 1) + 10, (sig, small["per"].get(sig), k)


def test_repeat_pushes_are_still_coded_in_a_long_facility_encounter():
    """The walk keeps the outcome: every push after the first is a repeat; in the facility one is
    reported each time more than 30 minutes have passed since the last reported one."""
    from oncologic import solver
    from oncologic.load import validate
    from oncologic.regimens import pathological

    doc = pathological(120)  # starts 06:00, 06:01, ... 07:59: one minute apart
    doc["setting"] = "facility"
    claim = solver.code_one(validate(doc))
    lines = [ln for ln in claim.lines if ln.code == "96376"]
    # reported at minutes 31, 62, 93 (each more than 30 after the previous reported one)
    assert sum(ln.units for ln in lines) == 3
    within = [nb for nb in claim.not_billed if nb.candidate == "96376"]
    assert len(within) == 120 - 1 - 3
