"""Orthanc Python plugin: POST /gateway/import.

The dicom-gateway writes every instance it receives to an S3 bucket, then tells the cloud
Orthanc where the object is and what its sha256 is. This plugin reads the object from S3
(inside the cloud, so the bytes never travel back through the gateway), checks its sha256,
and imports it with a POST to Orthanc's own /instances.

Request body (JSON), one of:
    {"bucket": B, "key": K, "sha256": H}
    {"items": [{"bucket": B, "key": K, "sha256": H}, ...]}        (1..MAX_ITEMS items)

Answer: see orthanc/README.md ("POST /gateway/import"): one result per item, with the Orthanc
instance id and status Success / AlreadyStored, or an error code; the HTTP status is 200 only
when every item is in Orthanc.

Settings, from Orthanc's environment (the gateway's own names):
    S3_ENDPOINT, S3_REGION (default us-east-1), S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY,
    S3_FORCE_PATH_STYLE (default: true when S3_ENDPOINT is set),
    GATEWAY_IMPORT_MAX_OBJECT_BYTES (default 1 GiB): larger objects are refused (413),
    before reading when S3 announces the size. Orthanc's import takes the whole file in
    memory: one import holds up to twice the object (the chunks read and the joined bytes).

orthanc-python 4.0 runs every callback under one interpreter lock: a batch request costs
one lock hand-over, a request per item one each. Items of a batch are imported one after
the other; each object's bytes are released before the next one is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import orthanc
import urllib3.exceptions

ROUTE = "/gateway/import"
MAX_ITEMS = 1000
# 1000 items of a 1 KiB key each, with room to spare; bigger bodies are refused unparsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_KEY_BYTES = 1024  # S3's limit on an object key (UTF-8 bytes)
READ_CHUNK_BYTES = 1024 * 1024
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
# S3 bucket naming rules, loosely: 3..63 characters, no slash (path-style URLs split on it).
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class ImportFailure(Exception):
    """One item could not be imported: an HTTP status and a stable error code."""

    def __init__(
        self, http_status: int, code: str, message: str, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        # The connection to S3 failed (refused, timed out, cut short): the rest of a batch
        # would most likely only wait for the same timeouts again.
        self.unreachable = unreachable


class BadRequest(Exception):
    """The request body is not a valid import request: 400, nothing is read or imported."""


@dataclass(frozen=True)
class Item:
    bucket: str
    key: str
    sha256: str  # lower-case hex


# ---------------------------------------------------------------------------- settings


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _path_style(endpoint: str | None) -> bool:
    # Same rule as the gateway (src/store/s3-store.ts): custom endpoints rarely have
    # bucket DNS names, so path-style unless told otherwise.
    raw = _env("S3_FORCE_PATH_STYLE")
    if raw is None:
        return endpoint is not None
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"S3_FORCE_PATH_STYLE={raw}: use true or false")


def _max_object_bytes() -> int:
    raw = _env("GATEWAY_IMPORT_MAX_OBJECT_BYTES")
    if raw is None:
        return 1024 * 1024 * 1024
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"GATEWAY_IMPORT_MAX_OBJECT_BYTES={raw}: use a positive integer")
    return int(raw)


def _make_client() -> Any:
    endpoint = _env("S3_ENDPOINT")
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=_env("S3_REGION") or "us-east-1",
        aws_access_key_id=_env("S3_ACCESS_KEY_ID"),
        aws_secret_access_key=_env("S3_SECRET_ACCESS_KEY"),
        config=botocore.config.Config(
            s3={"addressing_style": "path" if _path_style(endpoint) else "auto"},
            # Every wait has a bound: an unreachable S3 answers 502 within seconds, and the
            # caller (the gateway's notify worker) owns the retry policy.
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


MAX_OBJECT_BYTES = _max_object_bytes()
S3 = _make_client()


# ---------------------------------------------------------------------------- request body


def _item(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: must be an object with bucket, key and sha256")
    extra = sorted(set(raw) - {"bucket", "key", "sha256"})
    if extra:
        raise BadRequest(f"{where}.{extra[0]}: unknown field")
    bucket, key, sha256 = raw.get("bucket"), raw.get("key"), raw.get("sha256")
    if not isinstance(bucket, str) or not BUCKET_NAME.match(bucket):
        raise BadRequest(f"{where}.bucket: must be an S3 bucket name (3 to 63 characters)")
    if not isinstance(key, str) or key == "" or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequest(f"{where}.key: must be a non-empty string of at most 1024 bytes")
    if not isinstance(sha256, str) or not SHA256_HEX.match(sha256):
        raise BadRequest(f"{where}.sha256: must be 64 hexadecimal digits")
    return Item(bucket, key, sha256.lower())


def parse_body(body: bytes) -> tuple[list[Item], bool]:
    """The items of a request, and whether it was a batch ({"items": [...]})."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body: larger than {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest(f"body: not JSON ({err})") from None
    if not isinstance(doc, dict):
        raise BadRequest("body: must be a JSON object")
    if "items" not in doc:
        return [_item(doc, "body")], False
    extra = sorted(set(doc) - {"items"})
    if extra:
        raise BadRequest(f"body.{extra[0]}: not allowed beside items")
    items = doc["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise BadRequest(f"body.items: must be a list of 1 to {MAX_ITEMS} items")
    return [_item(raw, f"items[{i}]") for i, raw in enumerate(items)], True


# ---------------------------------------------------------------------------- one item


def _read_object(item: Item) -> tuple[bytes, str]:
    """The object's bytes and their sha256, read in chunks, refused past MAX_OBJECT_BYTES."""
    try:
        obj = S3.get_object(Bucket=item.bucket, Key=item.key)
        length = obj.get("ContentLength")
        if isinstance(length, int) and length > MAX_OBJECT_BYTES:
            obj["Body"].close()
            raise ImportFailure(
                413, "ObjectTooLarge", f"{length} bytes, limit {MAX_OBJECT_BYTES}"
            )
        chunks: list[bytes] = []
        size = 0
        digest = hashlib.sha256()
        stream = obj["Body"]
        try:
            for chunk in stream.iter_chunks(READ_CHUNK_BYTES):
                size += len(chunk)
                # Not trusting ContentLength alone: a server may send more than it said.
                if size > MAX_OBJECT_BYTES:
                    raise ImportFailure(
                        413, "ObjectTooLarge", f"more than {MAX_OBJECT_BYTES} bytes"
                    )
                digest.update(chunk)
                chunks.append(chunk)
        finally:
            stream.close()
        return b"".join(chunks), digest.hexdigest()
    except botocore.exceptions.ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            raise ImportFailure(404, "ObjectNotFound", f"s3://{item.bucket}/{item.key}: {code}")
        raise ImportFailure(502, "S3Error", f"s3://{item.bucket}/{item.key}: {err}")
    except (
        botocore.exceptions.BotoCoreError,
        urllib3.exceptions.HTTPError,
        OSError,
    ) as err:
        # Connection refused, timeouts, a body cut short: the S3 side, worth a retry.
        raise ImportFailure(
            502, "S3Error", f"s3://{item.bucket}/{item.key}: {err}", unreachable=True
        )


def _import(item: Item) -> dict[str, Any]:
    data, digest = _read_object(item)
    if digest != item.sha256:
        raise ImportFailure(
            422, "Sha256Mismatch", f"the object's sha256 is {digest}, expected {item.sha256}"
        )
    try:
        answer = json.loads(orthanc.RestApiPost("/instances", data))
    except orthanc.OrthancException as err:
        raise ImportFailure(500, "ImportFailed", f"Orthanc refused the file: {err}")
    status = answer.get("Status")
    if status not in ("Success", "AlreadyStored"):
        raise ImportFailure(500, "ImportFailed", f"Orthanc answered status {status!r}")
    return {
        "bucket": item.bucket,
        "key": item.key,
        "httpStatus": 200,
        "status": status,
        "instanceId": answer.get("ID"),
        "studyId": answer.get("ParentStudy"),
    }


def _failed(item: Item, f: ImportFailure) -> dict[str, Any]:
    orthanc.LogWarning(f"gateway_import: s3://{item.bucket}/{item.key}: {f.code}: {f.message}")
    return {
        "bucket": item.bucket,
        "key": item.key,
        "httpStatus": f.http_status,
        "status": "Failed",
        "error": f.code,
        "message": f.message,
    }


def import_items(items: list[Item]) -> list[dict[str, Any]]:
    """One result per item, in order: never raises."""
    results: list[dict[str, Any]] = []
    unreachable: ImportFailure | None = None
    for item in items:
        if unreachable is not None:
            why = f"not tried after an S3 connection failure ({unreachable.message})"
            results.append(_failed(item, ImportFailure(502, "S3Error", why)))
            continue
        try:
            results.append(_import(item))
        except ImportFailure as f:
            results.append(_failed(item, f))
            if f.unreachable:
                unreachable = f
        except Exception as err:  # noqa: BLE001 - one item's bug must not hide the others
            results.append(
                _failed(item, ImportFailure(500, "ImportFailed", f"{type(err).__name__}: {err}"))
            )
    return results


# ---------------------------------------------------------------------------- REST callback


def _send_json(output: Any, http_status: int, doc: dict[str, Any]) -> None:
    # ensure_ascii (the default): the text's length is its length in bytes, which is what
    # SendHttpStatus(status, body: str, size) of orthanc-python 4.0 wants.
    body = json.dumps(doc)
    if http_status == 200:
        output.AnswerBuffer(body, "application/json")
    else:
        output.SetHttpHeader("Content-Type", "application/json")
        output.SendHttpStatus(http_status, body, len(body))


def on_import(output: Any, uri: str, **request: Any) -> None:
    if request.get("method") != "POST":
        output.SendMethodNotAllowed("POST")
        return
    try:
        items, batch = parse_body(request.get("body") or b"")
    except BadRequest as err:
        _send_json(output, 400, {"status": "Failed", "error": "BadRequest", "message": str(err)})
        return
    results = import_items(items)
    failed = [r for r in results if r["httpStatus"] != 200]
    # The worst failure sets the status: any 5xx (worth a retry) wins over a 4xx (final).
    http_status = max((r["httpStatus"] for r in failed), default=200)
    if batch:
        doc = {"items": results, "imported": len(results) - len(failed), "failed": len(failed)}
        _send_json(output, http_status, doc)
    else:
        _send_json(output, http_status, results[0])


def _safe_on_import(output: Any, uri: str, **request: Any) -> None:
    # An exception escaping a callback becomes Orthanc's bare "Error encountered within the
    # plugin engine": always answer JSON instead.
    try:
        on_import(output, uri, **request)
    except Exception as err:  # noqa: BLE001
        orthanc.LogError(f"gateway_import: {type(err).__name__}: {err}")
        _send_json(
            output, 500, {"status": "Failed", "error": "InternalError", "message": str(err)}
        )


orthanc.RegisterRestCallback(ROUTE, _safe_on_import)
