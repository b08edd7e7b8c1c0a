#!/usr/bin/env python3
"""Flips one byte in the middle of one file of the newest published version of an artifact, as storage
corruption would: s3_corrupt.py BUCKET PREFIX NAME FILE (the version is the one PREFIX/NAME/latest.json
names; endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)."""
import json
import os
import sys

import botocore.session


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: s3_corrupt.py BUCKET PREFIX NAME FILE")
    bucket, prefix, name, file = sys.argv[1:]
    s3 = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
    latest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}/latest.json")["Body"].read())
    key = f"{latest['artifact_prefix']}/{file}"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not body:
        sys.exit(f"s3://{bucket}/{key} is empty: nothing to corrupt")
    body[len(body) // 2] ^= 0x21
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    print(f"corrupted s3://{bucket}/{key} ({len(body)} bytes)")


if __name__ == "__main__":
    main()
