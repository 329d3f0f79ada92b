"""S3 in tests: moto's server (the ``s3_endpoint`` fixture) and its buckets."""

from __future__ import annotations

import secrets

import boto3

KEYS = {"s3_region": "us-east-1", "s3_access_key_id": "test", "s3_secret_access_key": "test"}


def new_bucket(endpoint: str) -> str:
    name = f"onsite-{secrets.token_hex(6)}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=KEYS["s3_region"],
        aws_access_key_id=KEYS["s3_access_key_id"],
        aws_secret_access_key=KEYS["s3_secret_access_key"],
    )
    client.create_bucket(Bucket=name)
    return name
