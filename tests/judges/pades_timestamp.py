#!/usr/bin/env python3
"""Sign a PDF with pyHanko (PAdES baseline, ETSI.CAdES.detached, SHA-384)
with a local key, time-stamped by an RFC 3161 TSA over HTTP, and judge it
as PAdES B-T or B-LT.

usage:
  pades_timestamp.py b-t TSA_URL TSA_ROOT.pem SIGNER_KEY.pem SIGNER_CERT.pem OUT.pdf
      Sign, then validate: the signature intact and valid (SIGNER_CERT as
      its own anchor), its signature-time-stamp intact, valid and trusted
      under TSA_ROOT alone (the TSU's chain checked with revocation fetched
      live from the URLs in the certificates, hard-fail). Prints B-T.
  pades_timestamp.py sign-lt TSA_URL ROOT.pem SIGNER_KEY.pem SIGNER_CERT.pem OUT.pdf
      SIGNER_CERT.pem may carry the signer's chain after its certificate.
      Sign with validation info embedded (pyHanko's embed_validation_info,
      --with-validation-info on the command line): the signer's and the
      TSU's chains validated under ROOT alone with revocation fetched live
      and required (hard-fail), the OCSP answers and CRLs put in the
      document's DSS. Prints SIGNED-LT and what the DSS holds.
  pades_timestamp.py validate-lt ROOT.pem PDF
      Validate as ETSI EN 319 102-1 does for signatures with long-term
      validation material (EN 319 102-1 5.5, pyHanko's
      ades_with_time_validation, at the current time), with ROOT alone
      as trust anchor and online fetching of revocation information and
      certificates disabled: only what the document embeds counts.
      Prints B-LT with the findings, or INVALID: <reason>.

Exit status 0 for B-T / SIGNED-LT / B-LT, 1 for INVALID, 2 for a usage or
tooling error.
"""
import asyncio
import io
import sys

from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import crl, pem, x509
from pyhanko.keys import load_certs_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.ades import ades_with_time_validation
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
    bootstrap_validation_data_handlers,
)
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy, FreshnessReqType
from pyhanko_certvalidator.registry import SimpleCertificateStore, SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from csc_sign import minimal_pdf


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def metadata(**extra):
    return signers.PdfSignatureMetadata(
        field_name="Signature1", md_algorithm="sha384", subfilter=fields.SigSeedSubFilter.PADES, **extra
    )


async def sign(url, key_path, cert_path, out_path, meta):
    # SIGNER_CERT.pem: the signer's certificate, then any of its chain.
    cert, *chain = load_certs_from_pemder([cert_path])
    signer = signers.SimpleSigner(
        signing_cert=cert, signing_key=load_private_key_from_pemder(key_path, None), cert_registry=SimpleCertificateStore.from_certs([cert, *chain])
    )
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=timestamps.HTTPTimeStamper(url))
    out = io.BytesIO()
    await pdf_signer.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(minimal_pdf())), output=out)
    with open(out_path, "wb") as f:
        f.write(out.getvalue())
    return out.getvalue()


async def b_t(url, root_path, key_path, cert_path, out_path):
    tsa_root = load(root_path)
    signer_cert = load(cert_path)
    signed = await sign(url, key_path, cert_path, out_path, metadata())
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
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


def dss_contents(reader):
    """(OCSP answers, CRLs, certificates) in the document's DSS."""
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return [], [], []
    ocsps = [asn1_ocsp.OCSPResponse.load(o.get_object().data) for o in dss.ocsps]
    crls = [crl.CertificateList.load(c.get_object().data) for c in dss.crls]
    return ocsps, crls, list(dss.load_certs())


async def sign_lt(url, root_path, key_path, cert_path, out_path):
    root = load(root_path)
    vc = ValidationContext(trust_roots=[root], allow_fetching=True, revocation_mode="hard-fail")
    meta = metadata(embed_validation_info=True, validation_context=vc)
    signed = await sign(url, key_path, cert_path, out_path, meta)
    ocsps, crls, certs = dss_contents(PdfFileReader(io.BytesIO(signed)))
    print(f"SIGNED-LT dss: {len(ocsps)} OCSP, {len(crls)} CRL, {len(certs)} certificates")
    return 0


async def validate_lt(root_path, pdf_path):
    root = load(root_path)
    with open(pdf_path, "rb") as f:
        data = f.read()
    reader = PdfFileReader(io.BytesIO(data))
    sigs = reader.embedded_regular_signatures
    if len(sigs) != 1:
        print(f"INVALID: {len(sigs)} signatures")
        return 1
    sig = sigs[0]
    ocsps, crls, certs = dss_contents(reader)
    print(f"dss: {len(ocsps)} OCSP, {len(crls)} CRL")
    # The policy of `pyhanko sign adesverify` (revocation information
    # required for every certificate of both chains), but nothing fetched:
    # only the DSS and what the CMS carries count.
    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[root]),
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO, freshness=None, freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION
        ),
    )
    local_only = RevocationInfoGatheringSpec(
        online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
        certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
    )
    embedded = LocalKnowledge(
        known_ocsps=[c for o in ocsps for c in OCSPContainer.load_multi(o)],
        known_crls=[CRLContainer(c) for c in crls],
        known_certs=certs,
    )
    spec = SignatureValidationSpec(
        cert_validation_policy=cert_policy, revinfo_gathering_policy=local_only, local_knowledge=embedded
    )
    # ETSI EN 319 102-1 5.5, the validation of signatures with time and
    # with long-term validation data (B-T, B-LT), at the current time.
    # (5.6, pyHanko's ades_lta_validation, goes on to validate in the past,
    # which needs proof of existence of the validation data: a document
    # time-stamp, i.e. B-LTA.)
    sig.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)
    timing = ValidationTimingInfo.now()
    result = await ades_with_time_validation(
        signed_data=sig.signed_data,
        validation_spec=spec,
        timing_info=timing,
        validation_data_handlers=bootstrap_validation_data_handlers(spec=spec, timing_info=timing),
        raw_digest=sig.compute_digest(),
        extra_status_kwargs=sig.summarise_integrity_info(),
        status_cls=PdfSignatureStatus,
    )
    status = result.api_status
    print(f"ades: {result.ades_subindic} {result.failure_msg or ''}".strip())
    if status is not None:
        print(f"signature: {status.summary()} modification={status.modification_level}")
    if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        print(f"INVALID: SubFilter {sig.sig_object.get('/SubFilter')}")
        return 1
    if result.ades_subindic != AdESPassed.OK or status is None:
        print(f"INVALID: {result.ades_subindic}: {result.failure_msg}")
        return 1
    if not (status.intact and status.valid and status.trusted):
        print(f"INVALID: signature {status.summary()}")
        return 1
    tsv = status.timestamp_validity
    if tsv is None:
        print("INVALID: no signature time-stamp")
        return 1
    if not (tsv.intact and tsv.valid and tsv.trusted):
        print(f"INVALID: time-stamp {tsv.summary()}")
        return 1
    if not ocsps and not crls:
        print("INVALID: no revocation information embedded")
        return 1
    print(
        "B-LT: signature intact, valid, trusted; time-stamped (intact, valid, trusted) at "
        f"{tsv.timestamp.isoformat()}; validated with the embedded revocation information only"
    )
    return 0


async def main():
    mode, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else (None, [])
    if mode == "b-t" and len(args) == 5:
        return await b_t(*args)
    if mode == "sign-lt" and len(args) == 5:
        return await sign_lt(*args)
    if mode == "validate-lt" and len(args) == 2:
        return await validate_lt(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
