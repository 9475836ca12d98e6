"""Create S3 buckets the way AWS creates them, not the way moto does.

Since 5 January 2023 AWS encrypts every new bucket with SSE-S3 by default
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html), and since
April 2023 it blocks all public access of every new bucket (S3 Block Public Access on, ACLs
disabled: https://aws.amazon.com/blogs/aws/heads-up-amazon-s3-security-changes-are-coming-in-april-of-2023/).
moto does neither, so tests that create a bucket with plain ``create_bucket`` see a bucket that
AWS can no longer produce. `create_bucket` sets both defaults explicitly right after creating it.
"""

from __future__ import annotations

from typing import Any

PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
"""The four S3 Block Public Access flags; AWS sets all four on every new bucket."""

SSE_S3 = {
    "Rules": [
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
            "BucketKeyEnabled": False,
        }
    ]
}
"""AWS's default encryption configuration of a new bucket (SSE-S3)."""


def create_bucket(client: Any, **kwargs: Any) -> Any:
    """``client.create_bucket(**kwargs)``, then AWS's defaults: SSE-S3 and all public access blocked."""
    result = client.create_bucket(**kwargs)
    bucket = kwargs["Bucket"]
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=SSE_S3)
    client.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)
    )
    return result
