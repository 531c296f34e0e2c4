"""The seeded encounter generator, kept here for the benchmarks and older scripts: it lives in the
package as :mod:`oncologic.regimens` (rule authors use it through ``oncologic.testing``).

    python benchmarks/generator.py 1000 --seed 7 > enc.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oncologic.regimens import *  # noqa: E402,F401,F403
from oncologic.regimens import (  # noqa: E402,F401  (private helpers some scripts use)
    DRUGS, PAYERS, REGIMEN_NAMES, REGIMENS, _Enc, _fmt, _pick, check_codes, encounter, generate, main,
    ndc_packages, pathological, write_jsonl,
)

if __name__ == "__main__":
    main()
