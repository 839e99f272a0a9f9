"""Who a child runs as, and making sure nothing of it is left when it is done.

When the grader runs as root (as on Gradescope), every child gets a uid never used before in this grader process
(a regrade included), so nothing a child leaves can be mistaken for, or signal, the next one. Uids come in
blocks, each held by one grader process through a flock, so two graders on one machine never share one.

The sweep runs in the grader itself, as root: it SIGKILLs, through pidfds (no pid reuse race), every process of
the child's uid until none is alive. A process of the sandbox uid cannot signal root, so it cannot stop the sweep.
Then every file the uid owns at the top of the world-writable folders (/tmp, /dev/shm, ...) is removed.

Forbidden libraries are kept out of reach by permissions: their package folders belong to root and the group
LIBRARY_GID, mode 750. Only a child given that group (the ResNet one) can import them; the layers child cannot,
whatever its code does, because the files cannot be opened. ``restrict_packages`` sets this up, idempotently;
the grader calls it on its own interpreter's site-packages before its first child.
"""
import fcntl
import os
import signal
import site
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY_GID = 65534
LIBRARY_GID = 64999        # may read the forbidden libraries (torch, ...)
UID_BASE, UID_BLOCK, UID_BLOCKS = 200_000, 1000, 1000
UID_LOCKS = Path(tempfile.gettempdir()) / "convlab-sandbox-uids"
SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", tempfile.gettempdir())
# Top-level packages (or subpackages) a child without LIBRARY_GID must not import.
RESTRICTED = ("torch", "functorch", "torchgen", "torchvision", "tensorflow", "jax", "jaxlib", "scipy/signal",
              "scipy/ndimage")

_blocks = []     # (first uid, lock file) held for the life of this process
_next = [None]   # the next unused uid of the current block


def _new_block():
    UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    start = os.getpid() % UID_BLOCKS
    for i in range(UID_BLOCKS):
        block = (start + i) % UID_BLOCKS
        if any(first == UID_BASE + block * UID_BLOCK for first, _ in _blocks):
            continue
        lock = open(UID_LOCKS / str(block), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        first = UID_BASE + block * UID_BLOCK
        _blocks.append((first, lock))
        return first
    raise RuntimeError("no free block of sandbox uids")


def fresh_uid():
    """A uid no child of this process has had, and that no other live grader process may hand out."""
    if _next[0] is None or _next[0] % UID_BLOCK == 0:
        _next[0] = _new_block()
    uid = _next[0]
    _next[0] += 1
    return uid


def processes_of(uid):
    """Pids of the live (not zombie) processes whose real uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)] and fields.get("State", "Z").split()[0] not in "ZX":
            found.append(int(entry.name))
    return found


def _kill(pid, uid):
    """SIGKILL ``pid`` if it still belongs to ``uid`` (checked through a pidfd, so a reused pid is spared)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if os.stat(f"/proc/{pid}").st_uid == uid:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep(uid):
    """Kill every process of ``uid``, again until none is alive (one may fork while the sweep runs; a process
    with SIGKILL pending cannot fork, so each pass leaves only those forked before it reached their parent)."""
    for _ in range(10_000):
        pids = processes_of(uid)
        if not pids:
            return True
        for pid in pids:
            _kill(pid, uid)
    return False


def remove_tree(path):
    """Remove ``path`` however deep it goes (rm walks without recursion and never follows links)."""
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


def leftovers(uid):
    """Entries that ``uid`` created at the top of the world-writable folders."""
    found = []
    for folder in dict.fromkeys(SHARED_FOLDERS):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    found.append(entry.path)
            except OSError:
                continue
    return found


def shared_bytes(uid, budget=2000):
    """Bytes held by ``uid``'s files in the shared folders (in /dev/shm, and in /tmp where it is a tmpfs, memory
    that no process shows as resident; on disk, space): walks at most ``budget`` entries."""
    total, stack = 0, leftovers(uid)
    while stack and budget > 0:
        budget -= 1
        path = stack.pop()
        try:
            st = os.lstat(path)
            total += st.st_blocks * 512
            if Path(path).is_dir() and not Path(path).is_symlink():
                stack += [e.path for e in os.scandir(path)]
        except OSError:
            continue
    return total


def clean_up(uid):
    """Kill everything of ``uid`` and remove its files outside the child's own folder."""
    dead = sweep(uid)
    for path in leftovers(uid):
        remove_tree(path)
    return dead


def restrict_packages(paths=None):
    """Make the forbidden packages under ``paths`` (default: this interpreter's site-packages) readable only by
    root and LIBRARY_GID. Needs root; a no-op otherwise."""
    if os.geteuid() != 0:
        return
    paths = paths or [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    for base in dict.fromkeys(p for p in paths if p and os.path.isdir(p)):
        for name in RESTRICTED:
            target = os.path.join(base, name)
            try:
                st = os.lstat(target)
            except OSError:
                continue
            if (st.st_uid, st.st_gid, st.st_mode & 0o777) != (0, LIBRARY_GID, 0o750) and os.path.isdir(target) \
                    and not os.path.islink(target):
                os.chown(target, 0, LIBRARY_GID)
                os.chmod(target, 0o750)
