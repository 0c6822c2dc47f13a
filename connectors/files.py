"""Files that other programs or people read (drop folders, outboxes, keys, documents): a reader
sees the old file or the whole new one, never half of it; a name that must be taken only once
(an idempotent drop, a key made at first start) is published with a hard link, which refuses an
existing name across threads and processes.

Used by the connectors and, for the documents they write, by `reports/`."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


_OS_REASONS = {errno.ENOENT: "文件不存在", errno.EISDIR: "这是一个目录，不是文件",
               errno.EACCES: "没有读取权限", errno.EPERM: "没有读取权限",
               errno.ENOTDIR: "路径中有一级不是目录", errno.ENAMETOOLONG: "文件名过长"}


_WRITE_REASONS = {errno.EACCES: "没有写入权限", errno.EPERM: "没有写入权限",
                  errno.EROFS: "所在磁盘只读", errno.ENOSPC: "磁盘空间不足"}


def os_reason(exc: OSError, *, writing: bool = False) -> str:
    """Why a file could not be read (`writing`: written), in Chinese rather than the
    system's English."""
    reason = _WRITE_REASONS.get(exc.errno) if writing else None
    return reason or _OS_REASONS.get(exc.errno, f"系统错误（{exc.strerror or exc}）")


def _temp_beside(path: Path) -> tuple[int, str]:
    # the same directory as the target, so that rename and link never copy across devices
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")


def _fill(fd: int, data: bytes | Callable[[BinaryIO], None], mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)  # mkstemp makes 0600; readers (finance, a web server) need more
    with os.fdopen(fd, "wb") as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a new name itself survive a power cut (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path | str, data: bytes | Callable[[BinaryIO], None], *,
                     mode: int = 0o644) -> str | None:
    """Write `data` (bytes, or a function writing to the file) to `path` atomically. Returns
    the hex SHA-256 of `data` when it is bytes."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        _fill(fd, data, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return None if callable(data) else hashlib.sha256(data).hexdigest()


def publish_once(path: Path | str, payload: bytes, *, mode: int = 0o644) -> bool:
    """Create `path` with `payload` unless it exists; False when it already did. The temp file
    is complete and on disk before the link gives it its name: exactly one publisher wins."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        _fill(fd, payload, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # file systems without hard links: exclusivity then rests on the caller's lock
            if path.exists():
                return False
            os.replace(tmp, path)
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
