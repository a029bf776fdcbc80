# SPDX-License-Identifier: MIT
"""A file system that hangs, for tests: a FUSE mount whose server (this process) never answers.

Every lookup of a path below it sleeps in the kernel until the server answers or goes away, as on
a FUSE file system whose daemon stopped, or a hard NFS mount whose server is gone. On leaving the
context the server goes away (its /dev/fuse descriptor is closed: the sleeping calls fail with
ENOTCONN) and the mount is detached.

Needs root and /dev/fuse (Debian 12 has both; a container may not): otherwise the test is skipped
with the reason."""
import contextlib
import ctypes
import ctypes.util
import os
import tempfile
import unittest

MNT_DETACH = 2


@contextlib.contextmanager
def hung_file_system():
    if os.geteuid() != 0:
        raise unittest.SkipTest("a hung FUSE mount needs root")
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise unittest.SkipTest("no FUSE here: /dev/fuse: %s" % e.strerror)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    mnt = tempfile.mkdtemp(prefix="hw-hungfs-")
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % fd
    if libc.mount(b"heapwatch-hung", mnt.encode(), b"fuse", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        os.rmdir(mnt)
        raise unittest.SkipTest("cannot mount FUSE here: %s" % os.strerror(err))
    try:
        yield mnt
    finally:
        os.close(fd)  # the server is gone: what sleeps on the mount fails with ENOTCONN
        libc.umount2(mnt.encode(), MNT_DETACH)
        os.rmdir(mnt)


def still_hung(mnt):
    """Whether the mount is still there, unanswered (asked without looking up anything below it)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)
