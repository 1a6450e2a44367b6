"""Looking at what Portico left in its stores, with the stores' own clients rather than Portico's code."""

from __future__ import annotations

import asyncio

import boto3
from google.cloud import storage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from portico.settings import BlobBackend, Settings


def stored_blob_keys(settings: Settings) -> set[str]:
    blob = settings.blob
    if blob.backend is BlobBackend.S3:
        client = boto3.client("s3", endpoint_url=blob.endpoint_url, region_name=blob.region)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=blob.bucket, Prefix=blob.prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}
    if blob.backend is BlobBackend.GCS:
        client = storage.Client(project=blob.gcs_project)
        return {b.name for b in client.list_blobs(blob.bucket, prefix=blob.prefix)}
    root = settings.resolved_blob_dir()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def s3_open_multipart_uploads(settings: Settings) -> int:
    client = boto3.client("s3", endpoint_url=settings.blob.endpoint_url, region_name=settings.blob.region)
    return len(client.list_multipart_uploads(Bucket=settings.blob.bucket).get("Uploads", []))


def count_rows(settings: Settings, table: str) -> int:
    async def count() -> int:
        engine = create_async_engine(settings.resolved_database_url())
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())
