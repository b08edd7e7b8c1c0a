#!/usr/bin/env python3
"""A tiny S3-like HTTP server that checks every request's AWS Signature V4 with botocore.

Usage: sigv4_check.py PORT REPORT.json SECRET — serves PUT/HEAD/GET on 127.0.0.1:PORT (objects kept in
memory; ETag = MD5), and for each request recomputes the signature with botocore's S3SigV4Auth from the
same method, path, signed headers, x-amz-date and payload hash, then appends {method, path, signed_headers,
match, payload_hash_ok} to REPORT.json. Stops on GET /__shutdown.
"""
import hashlib
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT, REPORT, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3]
objects, results = {}, []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def check(self, body):
        auth = self.headers.get("Authorization", "")
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d+)/([^/]+)/s3/aws4_request, *"
                     r"SignedHeaders=([^,]+), *Signature=([0-9a-f]+)", auth)
        if not m:
            results.append({"method": self.command, "path": self.path, "match": False, "error": "no SigV4 header: " + auth})
            return
        key, _, region, signed, signature = m.groups()
        names = signed.split(";")
        headers = {n: self.headers[n] for n in names if n != "host"}
        req = AWSRequest(method=self.command, url=f"http://{self.headers['host']}{self.path}", data=body, headers=headers)
        req.context["timestamp"] = self.headers["x-amz-date"]
        signer = S3SigV4Auth(Credentials(key, SECRET), "s3", region)
        expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        payload_ok = self.headers.get("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()
        results.append({"method": self.command, "path": self.path, "signed_headers": names,
                        "match": expected == signature, "payload_hash_ok": payload_ok})

    def finish_request(self, status, body=b"", etag=None, length=None):
        # The report is complete before the client sees the answer, and replaced atomically: a client that reads
        # it right after its last request must never find it half-written.
        with open(REPORT + ".tmp", "w") as f:
            json.dump(results, f)
        os.replace(REPORT + ".tmp", REPORT)
        self.send_response(status)
        if etag:
            self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.check(body)
        objects[self.path] = body
        self.finish_request(200, etag=hashlib.md5(body).hexdigest())

    def do_HEAD(self):
        self.check(b"")
        body = objects.get(self.path)
        if body is None:
            self.finish_request(404)
        else:
            self.finish_request(200, etag=hashlib.md5(body).hexdigest(), length=len(body))

    def do_GET(self):
        if self.path == "/__shutdown":
            self.finish_request(200)
            raise SystemExit(0)
        self.check(b"")
        body = objects.get(self.path)
        self.finish_request(200 if body is not None else 404, body or b"")


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
