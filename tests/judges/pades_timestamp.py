#!/usr/bin/env python3
"""Sign a PDF with pyHanko (PAdES baseline, ETSI.CAdES.detached, SHA-384)
with a local key, time-stamped by an RFC 3161 TSA over HTTP, then validate
it: the signature intact and valid, its signature-time-stamp intact, valid
and trusted under TSA_ROOT alone (the TSU's chain checked with revocation
fetched live from the URLs in the certificates, hard-fail): PAdES B-T.

usage: pades_timestamp.py TSA_URL TSA_ROOT.pem SIGNER_KEY.pem SIGNER_CERT.pem OUT.pdf

Prints B-T, or INVALID: <reason>; exit status 0, 1 for INVALID, 2 for a
usage or tooling error.
"""
import asyncio
import io
import sys

from asn1crypto import pem, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from csc_sign import minimal_pdf


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


async def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    url, root_path, key_path, cert_path, out_path = sys.argv[1:6]
    tsa_root = load(root_path)
    signer_cert = load(cert_path)
    signer = signers.SimpleSigner.load(key_path, cert_path)
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1", md_algorithm="sha384", subfilter=fields.SigSeedSubFilter.PADES
    )
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=timestamps.HTTPTimeStamper(url))
    out = io.BytesIO()
    await pdf_signer.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(minimal_pdf())), output=out)
    with open(out_path, "wb") as f:
        f.write(out.getvalue())

    sig = PdfFileReader(io.BytesIO(out.getvalue())).embedded_signatures[0]
    if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        print(f"INVALID: SubFilter {sig.sig_object.get('/SubFilter')}")
        return 1
    signer_vc = ValidationContext(trust_roots=[signer_cert], allow_fetching=False, revocation_mode="soft-fail")
    ts_vc = ValidationContext(trust_roots=[tsa_root], allow_fetching=True, revocation_mode="hard-fail")
    status = await async_validate_pdf_signature(sig, signer_validation_context=signer_vc, ts_validation_context=ts_vc)
    if not (status.intact and status.valid):
        print(f"INVALID: signature {status.summary()}")
        return 1
    ts = status.timestamp_validity
    if ts is None:
        print("INVALID: no signature time-stamp")
        return 1
    if not (ts.intact and ts.valid and ts.trusted):
        print(f"INVALID: time-stamp {ts.summary()}")
        return 1
    print("B-T")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
