#!/usr/bin/env python3
"""Sign a PDF (PAdES baseline, SHA-256) with a key and certificate on a
PKCS#11 token, the way a holder's signing tool does: pyHanko's PKCS11Signer
finds the key and the certificate object by label on the token, and signs
with the raw mechanism (CKM_ECDSA over a digest made here), as SoftHSM and
many cards have no hash-and-sign ECDSA.

usage: pkcs11_sign.py MODULE TOKEN_LABEL PIN_FILE LABEL OUT.pdf

Prints SIGNED, or REFUSED: <why>; exit status 0 for SIGNED, 1 for REFUSED,
2 for a usage or tooling error.
"""
import io
import sys

from csc_sign import minimal_pdf
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.config.pkcs11 import TokenCriteria
from pyhanko.sign import fields, pkcs11, signers


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    module, token, pin_file, label, out = sys.argv[1:]
    with open(pin_file) as f:
        pin = f.read().strip()
    try:
        session = pkcs11.open_pkcs11_session(module, token_criteria=TokenCriteria(label=token), user_pin=pin)
    except Exception as e:  # noqa: BLE001 - any failure to open the token is a refusal to report
        print(f"REFUSED: cannot open token {token}: {e!r}")
        return 1
    try:
        signer = pkcs11.PKCS11Signer(session, cert_label=label, key_label=label, use_raw_mechanism=True)
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
        )
        writer = IncrementalPdfFileWriter(io.BytesIO(minimal_pdf()))
        signed = signers.sign_pdf(writer, meta, signer=signer)
    except Exception as e:  # noqa: BLE001 - pyHanko's and the token's errors alike are refusals
        print(f"REFUSED: {e!r}")
        return 1
    finally:
        session.close()
    with open(out, "wb") as f:
        f.write(signed.getvalue())
    print("SIGNED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
