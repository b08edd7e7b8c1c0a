#!/usr/bin/env python3
"""Recomputes a presigned S3 GET URL with botocore's S3SigV4QueryAuth and compares it with MESS's.

Usage: presign_check.py URL ACCESS_KEY SECRET REGION [SESSION_TOKEN] — the URL's own X-Amz-Date and
X-Amz-Expires are used as botocore's clock and expiry (botocore reads the clock in add_auth, so the steps
of add_auth are run here with that timestamp). Prints JSON: {match, expected, got, params_equal}.
"""
import json
import sys
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, access, secret, region = sys.argv[1:5]
token = sys.argv[5] if len(sys.argv) > 5 else None
parts = urlsplit(url)
params = dict(parse_qsl(parts.query, keep_blank_values=True))
req = AWSRequest(method="GET", url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
req.context["timestamp"] = params["X-Amz-Date"]
signer = S3SigV4QueryAuth(Credentials(access, secret, token), "s3", region, expires=int(params["X-Amz-Expires"]))
signer._modify_request_before_signing(req)
signature = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
signer._inject_signature_to_request(req, signature)
expected = dict(parse_qsl(urlsplit(req.url).query, keep_blank_values=True))
print(json.dumps({"match": signature == params.get("X-Amz-Signature"), "expected": signature,
                  "got": params.get("X-Amz-Signature"), "params_equal": expected == params,
                  "path_equal": urlsplit(req.url).path == parts.path}))
