#!/usr/bin/env python3
"""Sign a PDF (PAdES baseline, SHA-384) through a CSC remote signing service
with pyHanko's CSCSigner, the way a real client does: auth/login with HTTP
Basic, credentials/info for the certificate chain, and a
CSCAuthorizationManager that sends the authenticator's TOTP code to
credentials/authorize (SAD bound to the hash), then signatures/signHash.

usage: csc_sign.py [--input IN.pdf --field FIELD] SERVICE_URL API_VERSION USER
                   PASSWORD CREDENTIAL_ID TOTP_BASE32 TOTP_UNIX_TIME OUT.pdf

Without --input, a one-page PDF made here is signed in a new field
Signature1; with it, IN.pdf is signed in its existing empty signature field
FIELD (e.g. the holder's field of the confirmation document), as an
incremental update of IN.pdf's bytes.
TOTP_UNIX_TIME is the service's clock (tests run it on a fixed clock); the
code is computed here (RFC 6238, SHA-1, 30 s, 6 digits).
Prints SIGNED, or REFUSED: <the service's error>; exit status 0 for SIGNED,
1 for REFUSED, 2 for a usage or tooling error.
"""
import asyncio
import base64
import hashlib
import hmac
import io
import struct
import sys

import aiohttp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import csc_signer


def totp(secret_b32, unix_time):
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(secret, struct.pack(">Q", unix_time // 30), hashlib.sha1).digest()
    off = mac[19] & 0x0F
    code = (struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def minimal_pdf():
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    ]
    content = b"BT /F1 12 Tf 72 770 Td (qcert remote signing test) Tj ET"
    objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for o in offsets:
        out.write(b"%010d 00000 n \n" % o)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


class Refused(Exception):
    pass


class TotpAuthorizationManager(csc_signer.CSCAuthorizationManager):
    """Sends the authenticator's code with the hashes (SCAL 2)."""

    def __init__(self, session_info, credential_info, http, code):
        super().__init__(session_info, credential_info)
        self.http = http
        self.code = code

    async def authorize_signature(self, hash_b64s):
        req = self.format_csc_auth_request(otp=self.code, hash_b64s=hash_b64s)
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.http.post(url, headers=self.auth_headers, json=req) as r:
            data = await r.json(content_type=None)
            if r.status != 200:
                raise Refused(f"authorize {r.status}: {data.get('error')}: {data.get('error_description')}")
        return self.parse_csc_auth_response(data)


def arguments(argv):
    """(input PDF bytes, field name, the 8 positional arguments), or None."""
    pdf, field = minimal_pdf(), "Signature1"
    if argv[:1] == ["--input"]:
        if len(argv) < 4 or argv[2] != "--field":
            return None
        with open(argv[1], "rb") as f:
            pdf = f.read()
        field, argv = argv[3], argv[4:]
    return (pdf, field, argv) if len(argv) == 8 else None


async def main():
    parsed = arguments(sys.argv[1:])
    if parsed is None:
        print(__doc__, file=sys.stderr)
        return 2
    pdf, field, (service, api, user, password, credential, secret, unix, out) = parsed
    code = totp(secret, int(unix))
    async with aiohttp.ClientSession() as http:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        async with http.post(
            f"{service}/csc/{api}/auth/login", headers={"Authorization": f"Basic {basic}"}, json={}
        ) as r:
            data = await r.json(content_type=None)
            if r.status != 200:
                print(f"REFUSED: login {r.status}: {data.get('error')}: {data.get('error_description')}")
                return 1
            token = data["access_token"]
        session = csc_signer.CSCServiceSessionInfo(service, credential, oauth_token=token, api_ver=api)
        try:
            info = await csc_signer.fetch_certs_in_csc_credential(http, session)
        except SigningError as e:
            print(f"REFUSED: credentials/info: {e!r} {e.__cause__!r}")
            return 1
        if not info.hash_pinning_required:
            print("REFUSED: the service does not announce SCAL 2")
            return 1
        auth = TotpAuthorizationManager(session, info, http, code)
        signer = csc_signer.CSCSigner(http, auth)
        meta = signers.PdfSignatureMetadata(
            field_name=field,
            md_algorithm="sha384",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason="qcert CSC judge",
        )
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        try:
            signed = await signers.async_sign_pdf(writer, meta, signer=signer)
        except Refused as e:
            print(f"REFUSED: {e}")
            return 1
        except SigningError as e:
            cause = e.__cause__ or e.__context__
            print(f"REFUSED: {e} ({cause!r})")
            return 1
    with open(out, "wb") as f:
        f.write(signed.getvalue())
    print("SIGNED")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except Refused as e:
        print(f"REFUSED: {e}")
        sys.exit(1)
