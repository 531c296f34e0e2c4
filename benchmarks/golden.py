"""Same claims before and after a speed change: a digest of what the engine outputs.

    python benchmarks/golden.py save /tmp/golden.json     # before the change
    python benchmarks/golden.py check /tmp/golden.json    # after it: exit 1 on any difference

It codes every bundled example (``examples/*.yaml``) and 300 generated encounters (seed 11,
benchmarks/generator.py) under every payer profile in ``encodings/policies``, in chunks of 50
(the batch path), and records the claim JSON of each. ``check`` names the first encounters
whose claim differs. A performance rewrite of the rules or of the Python layer must leave this
unchanged (docs/performance.md); it complements the test suite, which checks outcomes, with a
byte-level check over many realistic encounters.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


def _claims() -> dict[str, str]:
    import generator
    from oncologic import refdata
    from oncologic.load import InputError, load_file, validate
    from oncologic.render import claim_json
    from oncologic.solver import code_encounters

    loaded = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        loaded.append((path.name, load_file(str(path))))
    for i, data in enumerate(generator.generate(300, seed=11)):
        try:
            loaded.append((f"gen-{i}", validate(data)))
        except InputError:
            continue
    out: dict[str, str] = {}
    for policy in sorted(p.stem for p in (refdata.ROOT / "encodings" / "policies").glob("*.lp")):
        for start in range(0, len(loaded), 50):
            chunk = loaded[start : start + 50]
            claims = code_encounters([x for _, x in chunk], policy=policy)
            for (name, _), claim in zip(chunk, claims):
                out[f"{policy}/{name}"] = claim_json(claim)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    mode, path = argv
    claims = _claims()
    if mode == "save":
        Path(path).write_text(json.dumps(claims, sort_keys=True), encoding="utf-8")
        digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).hexdigest()[:16]
        print(f"saved {len(claims)} claims to {path} (digest {digest})")
        return 0
    before = json.loads(Path(path).read_text(encoding="utf-8"))
    differ = sorted(k for k in before.keys() | claims.keys() if before.get(k) != claims.get(k))
    if differ:
        print(f"{len(differ)} of {len(before)} claims differ, e.g. {', '.join(differ[:5])}")
        return 1
    print(f"all {len(claims)} claims identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
