"""Claims on shards across processes, so that several generation runs can share one output directory.

A process writes shard ``shard-00003.h5`` only while it holds an exclusive ``flock`` on
``shard-00003.h5.lock``. The operating system drops the lock when its holder exits, ``kill -9`` included, so a
crashed run never blocks the shard; the next claimant finds the shard missing and writes it. Temporary files
carry the host and process id (``shard-00003.h5.tmp.<host>.<pid>``), and only the holder of a shard's claim
removes that shard's leftover temporaries (which then belong to a dead process).

``flock`` is local to one machine on most file systems; on a cluster file system it needs the file system's
lock support (NFSv4 emulates it with POSIX byte-range locks; Lustre needs the ``flock`` mount option).
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Claim:
    """An exclusive claim on one shard; :meth:`release` gives it back."""

    lock: Path
    fd: int

    def release(self) -> None:
        """Remove the lock file while still holding it, then drop the lock."""
        if self.fd < 0:
            return
        self.lock.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = -1


def try_claim(shard: Path) -> Claim | None:
    """Claim ``shard`` for this process, or return ``None`` when another live process holds it.

    The lock file is unlinked by its holder on release; a claimant that locked a file unlinked in between
    (its inode no longer the path's) retries on the new file, so two processes never both hold a shard.
    """
    lock = shard.with_name(shard.name + ".lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            return Claim(lock, fd)
        os.close(fd)


def temp_path(shard: Path) -> Path:
    """This process's temporary file for ``shard``: unique per host and process."""
    return shard.with_name(f"{shard.name}.tmp.{socket.gethostname()}.{os.getpid()}")


def leftover_temps(shard: Path) -> list[Path]:
    """Temporary files of ``shard`` left by earlier processes (call only while holding its claim)."""
    return sorted(shard.parent.glob(shard.name + ".tmp*"))
