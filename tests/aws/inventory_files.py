"""Write S3 Inventory reports the way AWS does (moto does not produce inventory reports).

The format, from https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory.html
and storage-inventory-location.html:

* ``<destination prefix>/<source bucket>/<config id>/YYYY-MM-DDTHH-MMZ/manifest.json``: a JSON
  object with ``sourceBucket``, ``destinationBucket`` (an ARN), ``version`` (``2016-11-30``),
  ``creationTimestamp`` (milliseconds since the epoch, as a string), ``fileFormat`` (``CSV``),
  ``fileSchema`` (the column names, comma separated) and ``files`` (``key``, ``size``,
  ``MD5checksum`` of each data file); ``manifest.checksum`` next to it is the manifest's MD5;
* ``<destination prefix>/<source bucket>/<config id>/data/<uuid>.csv.gz``: gzip CSV, no header,
  every field quoted, the key URL-encoded, ``true``/``false`` flags, ``LastModifiedDate`` in
  ISO 8601 with milliseconds, ``Size`` and ``ETag`` empty on delete markers.

The rows are read from the real bucket with ``ListObjectVersions``; *files* splits them over
several data files and *shuffle* mixes their order (AWS promises no order).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

SCHEMA = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass"
)


def _rows(s3: Any, bucket: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [(v, False) for v in page.get("Versions", [])] + [
            (d, True) for d in page.get("DeleteMarkers", [])
        ]
        for item, marker in entries:
            stamp = item["LastModified"].astimezone(UTC)
            rows.append(
                [
                    bucket,
                    quote_plus(item["Key"], safe="/"),
                    item.get("VersionId") or "",
                    "true" if item.get("IsLatest") else "false",
                    "true" if marker else "false",
                    "" if marker else str(item.get("Size", 0)),
                    stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
                    "" if marker else str(item.get("ETag", "")).strip('"'),
                    "" if marker else str(item.get("StorageClass", "STANDARD")),
                ]
            )
    return rows


def write_inventory(
    s3: Any,
    source: str,
    dest: str,
    prefix: str,
    created: datetime,
    *,
    files: int = 1,
    shuffle: bool = False,
    seed: int = 7,
) -> str:
    """Write an all-versions CSV inventory of *source* under ``s3://dest/prefix``; return its folder."""
    rows = _rows(s3, source)
    if shuffle:
        random.Random(seed).shuffle(rows)  # noqa: S311 - test data order
    folder = f"{prefix}{created:%Y-%m-%dT%H-%MZ}/"
    listed = []
    for index in range(files):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows[index::files])
        data = gzip.compress(text.getvalue().encode())
        key = f"{prefix}data/{index:04d}-{created:%Y%m%d%H%M}.csv.gz"
        s3.put_object(Bucket=dest, Key=key, Body=data)
        listed.append(
            {
                "key": key,
                "size": len(data),
                "MD5checksum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            }
        )
    manifest = json.dumps(
        {
            "sourceBucket": source,
            "destinationBucket": f"arn:aws:s3:::{dest}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(created.timestamp() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": SCHEMA,
            "files": listed,
        }
    ).encode()
    s3.put_object(Bucket=dest, Key=folder + "manifest.json", Body=manifest)
    s3.put_object(
        Bucket=dest,
        Key=folder + "manifest.checksum",
        Body=hashlib.md5(manifest, usedforsecurity=False).hexdigest(),
    )
    return folder
