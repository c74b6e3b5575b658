#!/usr/bin/env python3
"""Validate an end-entity certificate the way a signature verifier does:
pyhanko-certvalidator, fetching OCSP answers and CRLs live from the URLs in
the certificates.

usage: pyhanko_validate.py ROOT.pem ISSUING.pem EE.pem {ocsp|crl}
Prints VALID or INVALID: <reason>; exit status 0 for VALID, 1 for INVALID,
2 for a usage or tooling error.
"""
import asyncio
import sys

from asn1crypto import pem, x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathValidationError, RevokedError
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


async def main():
    if len(sys.argv) != 5 or sys.argv[4] not in ("ocsp", "crl"):
        print(__doc__, file=sys.stderr)
        return 2
    root, issuing, ee = (load(p) for p in sys.argv[1:4])
    ee_rule = RevocationCheckingRule.OCSP_REQUIRED if sys.argv[4] == "ocsp" else RevocationCheckingRule.CRL_REQUIRED
    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(ee_certificate_rule=ee_rule, intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED)
    )
    context = ValidationContext(trust_roots=[root], other_certs=[issuing], allow_fetching=True, revinfo_policy=policy)
    validator = CertificateValidator(ee, intermediate_certs=[issuing], validation_context=context)
    try:
        await validator.async_validate_usage({"non_repudiation"})
    except (RevokedError, PathValidationError) as e:
        print(f"INVALID: {e}")
        return 1
    print("VALID")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
