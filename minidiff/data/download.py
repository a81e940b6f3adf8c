"""Downloading data sets: a cache directory, checksums, and resumable HTTP downloads.

The cache lives in ``$MINIDIFF_DATA`` if set, else ``$XDG_CACHE_HOME/minidiff`` (``~/.cache/minidiff``);
every loader also takes a ``root`` argument that wins over both. Chapter "Image data".
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """A data file is neither in the cache nor downloadable (offline, or every mirror failed)."""


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The data cache: ``root`` if given, else ``$MINIDIFF_DATA``, else ``$XDG_CACHE_HOME/minidiff``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MINIDIFF_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "minidiff"


def file_checksum(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB chunks."""
    if algorithm not in ("md5", "sha256"):
        raise ValueError(f"algorithm must be 'md5' or 'sha256', got algorithm = {algorithm!r}")
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _algorithm(checksum: str) -> str:
    if len(checksum) == 32:
        return "md5"
    if len(checksum) == 64:
        return "sha256"
    raise ValueError(f"checksum must be an md5 (32 hex digits) or sha256 (64) digest, got {checksum!r}")


def check_file(path: str | os.PathLike, checksum: str) -> bool:
    """True if ``path`` exists and its md5 / sha256 (chosen by the digest's length) equals ``checksum``."""
    path = Path(path)
    return path.is_file() and file_checksum(path, _algorithm(checksum)) == checksum.lower()


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append ``url`` to ``part``, resuming with an HTTP Range request where ``part`` already has bytes."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "minidiff"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (https/http data URLs only)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is already complete
            return
        raise
    with resp:
        mode = "ab" if have and resp.status == 206 else "wb"  # 200: the server ignored Range, start over
        total = resp.headers.get("Content-Length")
        total = int(total) + (have if mode == "ab" else 0) if total else None
        from tqdm.auto import tqdm

        with open(part, mode) as f, tqdm(total=total, initial=have if mode == "ab" else 0, unit="B",
                                         unit_scale=True, desc=part.name.removesuffix(".part"), leave=False) as bar:
            for block in iter(lambda: resp.read(CHUNK), b""):
                f.write(block)
                bar.update(len(block))


def download(filename: str, mirrors: Sequence[str], checksum: str, root: str | os.PathLike | None = None,
             *, offline: bool = False, timeout: float = 60.0) -> Path:
    """Return the verified path of ``filename`` in the cache, downloading it if needed.

    Tries each mirror (a base URL ending in ``/``) in turn. An interrupted download leaves
    ``filename.part``, which the next call resumes with an HTTP Range request. The file is renamed
    into place only once its checksum matches. With ``offline=True`` (or no network) and no cached
    copy, raises :class:`DataUnavailableError` saying where to put the file by hand.
    """
    directory = cache_dir(root)
    path = directory / filename
    if check_file(path, checksum):
        return path
    where = f"download {filename} yourself from {mirrors[0]}{filename} and put it at {path}"
    if path.exists():
        raise DataUnavailableError(f"{path} exists but its checksum is not {checksum}: delete it or {where}")
    if offline:
        raise DataUnavailableError(f"{filename} is not in the cache {directory} and offline=True: {where}")
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / (filename + ".part")
    errors = []
    for base in mirrors:
        url = base + filename
        try:
            _fetch(url, part, timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{url}: {e}")
            continue
        if check_file(part, checksum):
            os.replace(part, path)
            return path
        errors.append(f"{url}: checksum mismatch")
        part.unlink()  # a corrupt file: start the next mirror from scratch
    raise DataUnavailableError(f"could not download {filename} ({'; '.join(errors)}). To work offline, {where}")
