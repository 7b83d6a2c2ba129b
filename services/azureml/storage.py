"""Uploads of model and code files to the workspace's default blob datastore.

ARM's ``startPendingUpload`` on an asset version hands out a blob container and a SAS URL
for it; each file is one block-blob PUT through that URL (at most four at a time),
retried as :mod:`modeldeck.services.retry` says (``Retry-After`` honoured). The SAS never
leaves this module: not in a returned URI, not in httpx's log lines.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from .. import inputs
from ..api.errors import BackendError
from ..retry import RetryPolicy, send_with_retries
from .arm import ArmClient

BLOB_API_VERSION = "2023-11-03"

_SECRET_QUERY = re.compile(r"(?i)\b(sig|se|skoid|sktid|code)=[^&\s\"']+")


class _RedactSecrets(logging.Filter):
    """httpx logs each request's URL at INFO; a blob upload's URL carries a SAS signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=REDACTED", str(a))
                if "=" in str(a)
                else a
                for a in args
            )
        return True


def redact_httpx_logs() -> None:
    log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactSecrets) for f in log.filters):
        log.addFilter(_RedactSecrets())


async def start_upload(arm: ArmClient, asset_version_path: str) -> dict[str, Any]:
    resp = await arm.request(
        "POST",
        f"{asset_version_path}/startPendingUpload",
        json={
            "pendingUploadId": str(uuid.uuid4()),
            "pendingUploadType": "TemporaryBlobReference",
        },
        retry_unsafe=True,
        kind="upload",
    )
    ref = (resp.json() or {}).get("blobReferenceForConsumption") or {}
    sas = (ref.get("credential") or {}).get("sasUri")
    if not ref.get("blobUri") or not sas:
        raise BackendError(
            "Azure ML returned no upload location for the files (startPendingUpload)"
        )
    return {"blobUri": ref["blobUri"], "sasUri": sas}


async def upload_path(
    http: httpx.AsyncClient,
    retry: RetryPolicy,
    upload: dict[str, Any],
    checked: inputs.Input,
    *,
    under: str,
) -> str:
    """Upload a checked file or folder (:func:`inputs.scan`); return the blob URI of
    ``under`` (SAS never returned)."""
    base, _, sas_query = str(upload["sasUri"]).partition("?")
    files = list(checked.files())
    sem = asyncio.Semaphore(4)

    async def put(entry: inputs.Entry) -> None:
        if not checked.is_dir:  # a file: the blob is the file itself
            blob = under or checked.name
        else:
            blob = f"{under}/{entry.rel}" if under else entry.rel
        name = blob.rsplit("/", 1)[-1]
        url = f"{base.rstrip('/')}/{quote(blob)}" + (f"?{sas_query}" if sas_query else "")
        async with sem:
            data = await asyncio.to_thread(inputs.read_entry, checked, entry)

            async def send() -> httpx.Response:
                return await http.put(
                    url,
                    content=data,
                    headers={
                        "x-ms-blob-type": "BlockBlob",
                        "x-ms-version": BLOB_API_VERSION,
                        "Content-Type": "application/octet-stream",
                    },
                )

            try:
                r = await send_with_retries(retry, send, safe=True)  # a PUT: idempotent
            except httpx.TransportError:
                raise BackendError(
                    f"uploading {name} to the workspace's storage failed (network)",
                    fix="check the network to the storage account and try again",
                ) from None
            if r.status_code >= 400:
                raise BackendError(
                    f"uploading {name} to the workspace's storage failed: HTTP {r.status_code} {r.text[:200]}",
                    fix="check that your identity may write to the workspace's default datastore",
                )

    await asyncio.gather(*(put(p) for p in files))
    root = str(upload["blobUri"]).split("?", 1)[0].rstrip("/")
    return f"{root}/{quote(under)}" if under else root
