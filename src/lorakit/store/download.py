"""Download an http(s) URL into the store's download area: resumable, optionally sha256-pinned.

A partial download stays in downloads/<key>/<file>.part; the next attempt asks the server for
the remaining bytes (HTTP Range) and appends. Only a complete file (matching --sha256 when
given) is renamed to its final name and handed to the installer.
"""

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from lorakit.errors import StoreError
from lorakit.store.blobs import sha256_file
from lorakit.store.layout import home

_CHUNK = 1 << 20
_TIMEOUT = 60


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def file_name(url: str) -> str:
    name = unquote(Path(urlparse(url).path).name)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "download"


class NotFound(StoreError):
    """The server answered 404."""


def fetch(url: str, sha256: str | None = None, name: str | None = None) -> Path:
    """Return the local path of the complete file at ``url``."""
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise StoreError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    folder = home() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:20]
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / (name or file_name(url))
    if final.is_file():
        if sha256 is not None and sha256_file(final) == sha256.lower():
            return final  # pinned and already here: no network needed
        final.unlink()  # unpinned: the URL may serve new content; fetch again
    part = final.with_name(final.name + ".part")
    _download(url, part)
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256.lower():
            part.unlink()
            shutil.rmtree(folder, ignore_errors=True)  # nothing of it stays in the store
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
            raise StoreError(f"{url}: sha256 mismatch (expected {sha256.lower()[:16]}..., got {got[:16]}...)",
                             "check the --sha256 value or the URL; the download was discarded")
    os.replace(part, final)
    return final


def _download(url: str, part: Path) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "lorakit"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=_TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # we already hold every byte
            return
        if e.code == 404:
            raise NotFound(f"cannot download {url}: HTTP 404 not found", "check the URL") from None
        raise StoreError(f"cannot download {url}: HTTP {e.code} {e.reason}",
                         "check the URL, or download the file yourself and install it from disk") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise StoreError(f"cannot download {url}: {reason}", "check the URL and your network, then run again") from None
    with resp:
        append = have and resp.status == 206
        total = resp.headers.get("Content-Length")
        expected = int(total) if total and total.isdigit() else None
        free = shutil.disk_usage(part.parent).free
        if expected is not None and expected + (64 << 20) > free:
            raise StoreError(f"not enough disk space to download {url}: {expected / 1e6:.0f} MB, "
                             f"{free / 1e6:.0f} MB free under {home()}", "free some space, or run: lorakit gc")
        got = 0
        try:
            with open(part, "ab" if append else "wb") as f:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, http.client.HTTPException) as e:
            raise StoreError(f"download of {url} interrupted ({e.__class__.__name__})",
                             "run the same command again to resume") from None
    if expected is not None and got < expected:
        raise StoreError(f"download of {url} interrupted ({got} of {expected} bytes)",
                         "run the same command again to resume")
