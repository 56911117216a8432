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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ssl_pde.core.errors import UserError


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


def write_claimed(path: Path, done: Callable[[], bool], write: Callable[[], None]) -> bool:
    """Write one output under its claim: skipped when ``done()`` says another process has finished it meanwhile;
    temporaries a dead process left are removed first. Returns whether this call wrote it.

    Raises:
        UserError: another live process holds the claim (rerun when it has finished).
    """
    claim = try_claim(path)
    if claim is None:
        raise UserError(f"{path} is being written by another process; rerun when it has finished")
    try:
        if done():
            return False
        for stale in leftover_temps(path):  # left by a dead process: it held this claim
            stale.unlink()
        write()
        return True
    finally:
        claim.release()


@contextmanager
def removing_new_dirs(outputs: Iterable[Path]) -> Iterator[None]:
    """On failure, remove the directories above ``outputs`` that did not exist on entry and are left empty, so an
    interrupted or refused run leaves no empty directory behind."""
    created = sorted({d for p in outputs for d in p.parents if not d.exists()}, key=lambda d: len(d.parts))
    try:
        yield
    except BaseException:
        for d in reversed(created):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise
