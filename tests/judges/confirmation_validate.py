#!/usr/bin/env python3
"""Judge a countersigned confirmation document (confirmare.pdf) with pyHanko's API.

usage: confirmation_validate.py ROOT.pem PDF HOLDER_FIELD QTSP_FIELD

Trust roots: ROOT.pem only (the issuing CA comes from the signatures'
certificates); revocation fetched live where the certificates point (soft
fail). Checks:
- exactly two signatures, the holder's (field HOLDER_FIELD) then the QTSP's;
- the holder's: intact, valid, trusted, later changes = form filling only;
- the QTSP's: intact, valid, trusted, PAdES (ETSI.CAdES.detached), with a
  signature time-stamp that is intact and trusted, covering the whole file;
- DEFAULT_DIFF_POLICY.review_file from the document as prefilled (revision
  0) and from the holder's revision: form filling, nothing more.
Prints one line per finding and OK at the end; exit 0 if all hold, 1 if
not, 2 for a usage or tooling error.
"""
import asyncio
import sys

from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
from pyhanko.sign.diff_analysis.policy_api import SuspiciousModification
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def context(root):
    return ValidationContext(trust_roots=[root], allow_fetching=True)


async def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    root = load(sys.argv[1])
    holder_field, qtsp_field = sys.argv[3], sys.argv[4]
    failures = []
    with open(sys.argv[2], "rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_signatures
        names = [s.field_name for s in sigs]
        print(f"signatures: {names}")
        if names != [holder_field, qtsp_field]:
            print(f"FAIL: expected signatures {[holder_field, qtsp_field]}")
            return 1
        holder, qtsp = sigs
        for sig in sigs:
            try:
                status = await async_validate_pdf_signature(
                    sig,
                    signer_validation_context=context(root),
                    ts_validation_context=context(root),
                    diff_policy=DEFAULT_DIFF_POLICY,
                )
            except SignatureValidationError as e:
                failures.append(f"{sig.field_name}: validation error {e}")
                continue
            ts = status.timestamp_validity
            print(
                f"{sig.field_name}: intact={status.intact} valid={status.valid} trusted={status.trusted} "
                f"modification={status.modification_level} coverage={status.coverage} "
                f"subfilter={sig.sig_object.get('/SubFilter')} "
                f"timestamp={None if ts is None else (ts.intact, ts.valid, ts.trusted)}"
            )
            if not (status.intact and status.valid and status.trusted):
                failures.append(f"{sig.field_name}: not intact, valid and trusted")
            if sig is holder and status.modification_level != ModificationLevel.FORM_FILLING:
                failures.append(f"holder: later changes are {status.modification_level}, not form filling")
            if sig is qtsp:
                if status.modification_level != ModificationLevel.NONE:
                    failures.append(f"qtsp: changes after it ({status.modification_level})")
                if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
                    failures.append("qtsp: not ETSI.CAdES.detached")
                if ts is None or not (ts.intact and ts.valid and ts.trusted):
                    failures.append("qtsp: no intact, valid and trusted signature time-stamp")
                if str(status.coverage) != "SignatureCoverageLevel.ENTIRE_FILE":
                    failures.append(f"qtsp: covers {status.coverage}")
        for base in (0, holder.signed_revision):
            result = DEFAULT_DIFF_POLICY.review_file(reader, base)
            if isinstance(result, SuspiciousModification):
                failures.append(f"review_file from revision {base}: suspicious: {result}")
                continue
            print(f"review_file from revision {base}: {result.modification_level}")
            if result.modification_level != ModificationLevel.FORM_FILLING:
                failures.append(f"review_file from revision {base}: {result.modification_level}")
    for f in failures:
        print(f"FAIL: {f}")
    if failures:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
