"""Carrying out a ``put_urls`` plan: PUT each planned output (``If-None-Match: *``, retried
when the failure is transient), then the index, last."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, List, Tuple

from .protocol import Failure, cancelled

INDEX_KEY = "outputs.json"
ATTEMPTS = 3


def carry_out(
    put_urls: Dict[str, str], prepared: List[Tuple], prefix: str, is_cancelled: Callable[[], bool]
) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Uploads the outputs that have a URL under ``outputs/<rel>``, in path order, then the
    index; returns the uploaded entries and the relative paths that had no URL. A cancel stops
    it before the next upload."""
    entries, skipped = [], []
    for relpath, mime, cid, size, body in prepared:
        if is_cancelled():
            raise cancelled()
        url = put_urls.get(f"outputs/{relpath}")
        if url is None:
            skipped.append(relpath)
            continue
        _put(url, body, size, mime, relpath)
        entries.append({"path": prefix + relpath, "cid": cid, "size_bytes": size, "mime": mime})
    url = put_urls.get(INDEX_KEY)
    if url is not None:
        index = json.dumps({"outputs": entries}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        _put(url, index, len(index), "application/json", INDEX_KEY)
    return entries, skipped


def _put(url: str, body: Any, size: int, mime: str, what: str) -> None:
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        data = body if isinstance(body, bytes) else open(body, "rb")
        request = urllib.request.Request(url, data=data, method="PUT", headers={
            "Content-Type": mime,
            "Content-Length": str(size),
            "If-None-Match": "*",
        })
        try:
            with urllib.request.urlopen(request, timeout=300):
                return
        except urllib.error.HTTPError as error:
            if error.code == 412 and attempt > 1:
                return  # an earlier attempt stored it; its answer was lost
            last = f"HTTP {error.code}"
            if not (error.code >= 500 or error.code in (408, 429)):
                break
        except OSError as error:
            # Never the URL: a presigned URL carries a credential in its query.
            last = type(error).__name__
        finally:
            if not isinstance(data, bytes):
                data.close()
        if attempt < ATTEMPTS:
            time.sleep(0.1 * 4 ** (attempt - 1))
    raise Failure("ERR_UPLOAD", f"upload of {what} failed: {last} (after {attempt} attempts)")
