"""The objects store on Cloudflare R2 or any S3 API (SPEC 5), through boto3.

Clients use SigV4, ``region_name="auto"`` for R2, short connect/read timeouts and a small bounded
number of retries, so an unreachable endpoint fails fast instead of holding a job.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.base import ObjectNotFound, ObjectTooLarge
from storage.keys import check_object_key

MISSING = {"404", "NoSuchKey", "NotFound"}
# Without ListBucket permission S3 answers 403, not 404, for a key that does not exist.
ABSENT_ON_HEAD = MISSING | {"403", "Forbidden", "AccessDenied"}


def connect(
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str,
    timeout_s: float,
) -> Any:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
        config=config,
    )


class S3ObjectStore:
    backend = "s3"

    def __init__(self, client: Any, bucket: str, presign_ttl_s: int) -> None:
        self.client = client
        self.bucket = bucket
        self.presign_ttl_s = presign_ttl_s

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_object_key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_object_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                raise ObjectNotFound(key) from None
            raise
        size = int(response.get("ContentLength", 0))
        if max_bytes is not None and size > max_bytes:
            response["Body"].close()
            raise ObjectTooLarge(key, size)
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_object_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ABSENT_ON_HEAD:
                return False
            raise
        return True

    def url(self, key: str) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": check_object_key(key)},
                ExpiresIn=self.presign_ttl_s,
            )
        )

    def ping(self) -> bool:
        """The bucket exists and these credentials can reach it."""
        self.client.head_bucket(Bucket=self.bucket)
        return True
