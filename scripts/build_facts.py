#!/usr/bin/env python3
"""Regenerate the shipped reference facts (facts/*.lp, facts/manifest.json) from the agency releases,
with the same importer a user runs (``oncologic data import``). A re-run is byte-identical.

Usage:
    python scripts/build_facts.py [--releases ../shared/data/releases] [--extracts ../shared/data] [--out facts]

The releases folder holds the CMS/FDA files as published (docs/reference-data.md lists them). Files
that do not state their own effective date (the reformatted NCCI MUE and PTP copies, the ICD-10-CM
extract) get the date their provenance gives, listed in SHIPPED below with the reason.
Two files of that folder are not shipped because they repeat others: the flat MUE CSV (the same
2026 Q4 rows as the per-group JSON files) and the PTP CSV of infusion pairs (a subset of the full
PTP table). The ICD-10-CM neoplasm table and the oncology category list come from the project's own
extracts (no agency release of them is in the folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from oncologic.refimport.core import parse_iso  # noqa: E402
from oncologic.refimport.readers import Options  # noqa: E402
from oncologic.refimport.store import import_tables, parse_file  # noqa: E402

# (path relative to the releases folder, or "extracts:<name>", glob allowed; effective date; setting)
SHIPPED = [
    ("asp/*Pricing File*.csv", None, None),
    ("asp/*Payment Limit*.csv", None, None),
    ("asp/cms-*-payment-limits.csv", None, None),
    ("asp/*Crosswalk*.csv", None, None),
    # NCCI MUE effective 2026-10-01: the source files are MCR_MUE_*_Eff_10-01-2026.csv (README provenance)
    ("mue/sophiewell_mue_2026Q4/*.json", "2026-10-01", None),
    # practitioner MUE of "about 2026-04" (no date in the copy): taken as the 2026 Q2 table
    ("mue/raidenexn_mue.json.gz", "2026-04-01", None),
    # practitioner PTP of "about 2026 Q2" (no effective dates in the copy): taken as 2026-04-01
    ("ptp/raidenexn_ptp/*.json.gz", "2026-04-01", "office"),
    # OPPS Addendum B names its calendar year but not its quarter: the quarter of each CMS release
    ("opps/Section 508 version of January 2025 Web Addendum B*.csv", "2025-01-01", None),
    ("opps/Section 508 of July 2025 Web Addendum B*.csv", "2025-07-01", None),
    ("opps/508 version of October 2025 Web Addendum B*.csv", "2025-10-01", None),
    ("hcpcs/*.zip", None, None),
    ("coverage/*.json", None, None),
    ("fda-ndc/package.txt", None, None),
    ("fda-ndc/product.txt", None, None),
    # ICD-10-CM tabular of April 1, 2026 (the extract's own provenance)
    ("extracts:icd10cm_neoplasms.csv", "2026-04-01", None),
    ("extracts:hcpcs_drug_units.csv", None, None),
]


def shipped_files(releases: Path, extracts: Path):
    for pattern, eff, setting in SHIPPED:
        base, pat = (extracts, pattern.split(":", 1)[1]) if pattern.startswith("extracts:") else (releases, pattern)
        matches = sorted(base.glob(pat))
        if not matches:
            raise SystemExit(f"build_facts: no file matches {base / pat}")
        for path in matches:
            display = path.resolve().relative_to(base.resolve()).as_posix()
            yield path, display, Options(parse_iso(eff) if eff else None, setting)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # ../shared/data beside the checkout (or beside one of its parents: a git worktree sits deeper)
    found = [b / "shared" / "data" for b in REPO.parents if (b / "shared" / "data" / "releases").is_dir()]
    shared = found[0] if found else REPO.parent / "shared" / "data"
    ap.add_argument("--releases", type=Path, default=shared / "releases")
    ap.add_argument("--extracts", type=Path, default=shared)
    ap.add_argument("--out", type=Path, default=REPO / "facts")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    parsed = [parse_file(path, opts, display) for path, display, opts in shipped_files(args.releases, args.extracts)]
    for old in args.out.glob("*.lp"):
        old.unlink()
    (args.out / "manifest.json").unlink(missing_ok=True)
    results = import_tables(args.out, parsed)
    if not args.quiet:
        for r in results:
            print(f"{r['file']}: {r['facts']} facts from {r['source']}")
        print(f"{len(results)} tables in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
