"""Who a child runs as, and making sure nothing of it is left when it is done.

When the grader runs as root (as on Gradescope), every child gets a uid (and a gid) never used before in this grader
process (a regrade included), so nothing a child leaves can be mistaken for, or signal, the next one. Uids come in
blocks, each held by one grader process through a flock, so two graders on one machine never share one.

The sweep kills through the uid itself: a helper forked from the grader becomes that uid and sends
``kill(-1, SIGKILL)`` (the kernel signals every process whose real or saved uid is the helper's: forks in flight,
zombie leaders whose threads live on, setuid programs the child started), again until /proc shows none of the
uid's processes alive. Then every file the uid owns at the top of the world-writable folders is removed, and
every System V IPC object it owns (its allow-list refuses both: this is the net behind it).

The forbidden libraries are kept from the layers child by the kernel (Landlock grants it numpy alone; seccomp
refuses it new executable mappings). Where Landlock is missing, Gradescope's image (setup.sh, at build time, in
its own venv) makes them ``root:LIBRARY_GID`` mode 750, and only a child given LIBRARY_GID (the ResNet one) can
read them. The grader never changes the environment it runs from.
"""
import ctypes
import fcntl
import os
import signal
import subprocess
import tempfile
from pathlib import Path

LIBRARY_GID = 64999        # may read the forbidden libraries where setup.sh restricted them (torch, ...)
UID_BASE, UID_BLOCK, UID_BLOCKS = 200_000, 1000, 1000
UID_LOCKS = Path(tempfile.gettempdir()) / "convlab-sandbox-uids"
SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue", tempfile.gettempdir())
IPC_TABLES = ("shm", "sem", "msg")   # /proc/sysvipc/*: System V objects, which outlive every process
IPC_RMID = 0
SWEEPS = 1000

_libc = ctypes.CDLL(None, use_errno=True)   # loaded here: the sweep's helper only calls it
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
    """Pids of the live processes whose real uid is ``uid`` (a zombie leader whose threads still run is live)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        state, threads = fields.get("State", "Z").split()[:1], fields.get("Threads", "1").split()[:1]
        if fields.get("Uid", "").split()[:1] == [str(uid)] and (state not in (["Z"], ["X"]) or threads != ["1"]):
            found.append(int(entry.name))
    return found


def sweep(uid):
    """Kill every process of ``uid`` from a helper running as ``uid``, and remove its IPC objects; True once
    none of its processes is alive."""
    helper = os.fork()
    if helper == 0:   # no Python-level locks from here on: plain syscalls, then _exit
        status = 1
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(SWEEPS):
                os.kill(-1, signal.SIGKILL)   # all of the uid's processes but this one, in one atomic pass
                if processes_of(uid) == [os.getpid()]:
                    status = 0
                    break
            remove_ipc(uid)   # as their owner: without CAP_SYS_ADMIN (Docker's default) root could not
        finally:
            os._exit(status)
    _, status = os.waitpid(helper, 0)
    return os.waitstatus_to_exitcode(status) == 0


def remove(paths, per_call=4096):
    """Remove ``paths`` however deep they go (rm walks without recursion and never follows links), with one rm
    per ``per_call`` of them: a flood of files costs a few processes, not one each."""
    paths = [str(path) for path in paths]
    for first in range(0, len(paths), per_call):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", *paths[first:first + per_call]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


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


def ipc_objects(uid):
    """[(table, id)] of the System V IPC objects ``uid`` owns or created (kernel memory no process shows)."""
    found = []
    for table in IPC_TABLES:
        try:
            header, *rows = Path("/proc/sysvipc", table).read_text().splitlines()
        except OSError:
            continue
        names = header.split()
        for row in rows:
            fields = dict(zip(names, row.split()))
            if str(uid) in (fields.get("uid"), fields.get("cuid")):
                found.append((table, int(row.split()[1])))
    return found


def remove_ipc(uid):
    """Remove every System V IPC object of ``uid`` (the allow-list refuses them; this frees any that got past)."""
    for table, ident in ipc_objects(uid):
        if table == "sem":
            _libc.semctl(ident, 0, IPC_RMID)
        else:
            getattr(_libc, f"{table}ctl")(ident, IPC_RMID, None)


def clean_up(uid):
    """Kill everything of ``uid``, remove its IPC objects and its files outside the child's own folder."""
    dead = sweep(uid)
    remove(leftovers(uid))
    return dead
