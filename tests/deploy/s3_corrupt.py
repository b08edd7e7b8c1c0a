#!/usr/bin/env python3
"""Makes a corrupt published version appear at once, as storage corruption of a fresh publication would:
s3_corrupt.py BUCKET STAGING PREFIX NAME FILE flips one byte in the middle of FILE of the version that
STAGING/NAME/latest.json names, then copies that latest.json to PREFIX/NAME/latest.json (the pointer keeps
naming the objects under STAGING, which pulling follows). Endpoint and credentials from AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION."""
import json
import os
import sys

import botocore.session


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: s3_corrupt.py BUCKET STAGING PREFIX NAME FILE")
    bucket, staging, prefix, name, file = sys.argv[1:]
    s3 = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
    pointer = s3.get_object(Bucket=bucket, Key=f"{staging}/{name}/latest.json")["Body"].read()
    key = f"{json.loads(pointer)['artifact_prefix']}/{file}"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not body:
        sys.exit(f"s3://{bucket}/{key} is empty: nothing to corrupt")
    body[len(body) // 2] ^= 0x21
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}/latest.json", Body=pointer)
    print(f"corrupted s3://{bucket}/{key} ({len(body)} bytes); s3://{bucket}/{prefix}/{name}/latest.json names it")


if __name__ == "__main__":
    main()
