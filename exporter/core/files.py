"""Reading a small file that someone else may have replaced with something hostile.

Key files and config files are read the same way: opened without blocking and checked
before any read, so a FIFO (which would wait for a writer forever), a device such as
``/dev/zero`` (endless) or a directory is refused at once, and never more than the cap is
read, even from a file that grows while it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

Refusal = Literal["unreadable", "not_regular", "too_big"]


class RefusedFileError(Exception):
    """Why a file was not read: ``kind``, and ``detail`` (the OS's words, or the file type)."""

    def __init__(self, kind: Refusal, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: Refusal = kind
        self.detail = detail


def read_regular_file(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of ``path``: a regular file (or a link to one) of at most ``max_bytes``."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise RefusedFileError("unreadable", exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFileError("not_regular", file_kind(info.st_mode))
        if info.st_size > max_bytes:
            raise RefusedFileError("too_big")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, max_bytes + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # grew while read
                raise RefusedFileError("too_big")
    except OSError as exc:
        raise RefusedFileError("unreadable", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words (``a FIFO``)."""
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"
