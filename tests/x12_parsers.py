"""Two independent X12 parsers for the tests, neither of them oncologic's own:

- **pyx12** validates an interchange against the 005010 implementation-guide maps (X222A1,
  X223A2) and reads the 2400 loops back;
- **LinuxForHealth x12** (PyPI ``linuxforhealth-x12``) parses each 837 transaction set into
  pydantic models and applies its own rules (a CLM02 total equal to the sum of the line charges,
  CL101 admission type on an 837I, segment counts...).

LinuxForHealth x12 0.57 is written for pydantic 1; the project runs pydantic 2, which ships the
version-1 API as ``pydantic.v1``. The parser therefore runs in a child Python process in which
``pydantic`` is that API, so the test process itself is never touched.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

HAVE_LFH = importlib.util.find_spec("linuxforhealth") is not None and importlib.util.find_spec("linuxforhealth.x12") is not None

_LFH = r"""
import json, sys
import pydantic.v1 as v1
sys.modules["pydantic"] = v1
from linuxforhealth.x12.io import X12ModelReader
out = []
for path in json.load(sys.stdin):
    try:
        with X12ModelReader(path) as reader:
            models = [json.loads(m.json(exclude_none=True)) for m in reader.models()]
        out.append({"ok": True, "models": models})
    except Exception as exc:  # the parser's own validation errors
        out.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
json.dump(out, sys.stdout)
"""


def _lfh_2410_ref(text: str) -> str:
    """LinuxForHealth x12's 837I model requires a REF in loop 2410 (drug identification), which
    the implementation guide makes situational (a prescription number, only when the drug was
    dispensed under one) and pyx12 does not require. For that parser alone, a REF*XZ is added
    after each 837I CTP (and the SE count fixed) so that it checks everything else."""
    if "005010X223" not in text:
        return text
    segs = text.rstrip("~\n").split("~")
    out = []
    for seg in segs:
        if seg.startswith("SE*"):
            parts = seg.split("*")
            st = max(i for i, x in enumerate(out) if x.startswith("ST*"))
            parts[1] = str(len(out) - st + 1)
            seg = "*".join(parts)
        out.append(seg)
        if seg.startswith("CTP*"):
            out.append("REF*XZ*LFHTEST")
    return "~".join(out) + "~\n"


def lfh_parse(*texts: str) -> list[dict[str, Any]]:
    """Parse each interchange with LinuxForHealth x12 (one child process for all of them):
    ``{"ok": True, "models": [transaction set as a dict, ...]}`` or ``{"ok": False, "error": ...}``."""
    texts = tuple(_lfh_2410_ref(t) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(texts):
            p = os.path.join(tmp, f"{i}.x12")
            with open(p, "w", encoding="ascii") as fh:
                fh.write(text)
            paths.append(p)
        run = subprocess.run([sys.executable, "-c", _LFH], input=json.dumps(paths), capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"LinuxForHealth x12 did not run: {run.stderr[-2000:]}")
    return json.loads(run.stdout)


def lfh_claims(model: dict) -> list[dict[str, Any]]:
    """The claims of one parsed 837 transaction set, flattened: id, total, member, patient name,
    birth date, sex, the rendering/attending provider's NPI, and the lines (code, charge, units,
    NDC unit, MEA, description)."""
    out = []
    for a in model.get("loop_2000a", []):
        for b in a.get("loop_2000b", []):
            ba = b.get("loop_2010ba", {})
            nm1 = ba.get("nm1_segment", {})
            dmg = ba.get("dmg_segment", {})
            for c in b.get("loop_2300", []):
                clm = c.get("clm_segment", {})
                prov = c.get("loop_2310b") or c.get("loop_2310a") or {}
                if isinstance(prov, list):
                    prov = prov[0] if prov else {}
                lines = []
                for ln in c.get("loop_2400", []):
                    sv = ln.get("sv1_segment") or ln.get("sv2_segment") or {}
                    proc = sv.get("product_service_id_qualifier") or sv.get("composite_medical_procedure_identifier") or ""
                    drug = ln.get("loop_2410") or {}
                    ctp = drug.get("ctp_segment", {}) if isinstance(drug, dict) else {}
                    lines.append({
                        "sv": sv,
                        "charge": sv.get("line_item_charge_amount"),
                        "units": sv.get("service_unit_count"),
                        "proc": proc,
                        "ctp": ctp,
                        "mea": ln.get("mea_segment"),
                        "nte": ln.get("nte_segment"),
                    })
                out.append({
                    "id": clm.get("patient_control_number"),
                    "total": clm.get("total_claim_charge_amount"),
                    "member": nm1.get("identification_code"),
                    "last": nm1.get("name_last_or_organization_name"),
                    "first": nm1.get("name_first"),
                    "birth": dmg.get("date_time_period"),
                    "sex": dmg.get("gender_code"),
                    "provider_npi": (prov.get("nm1_segment") or {}).get("identification_code"),
                    "cl1": c.get("cl1_segment"),
                    "lines": lines,
                })
    return out


def pyx12_validate(text: str) -> tuple[bool, str]:
    """Validate with pyx12 against the implementation-guide map; (ok, error report)."""
    import pyx12.params
    import pyx12.x12n_document

    param = pyx12.params.params()
    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(param, io.StringIO(text), io.StringIO(), None, None, out)
    return ok, out.getvalue()
