"""A sandboxed child confines itself, before the student's module is imported: from then on the kernel refuses
what student code may not do, and the refusal is the student's own error (PermissionError from os.fork, ...).

This file is copied beside driver.py into the sandbox and imported by it; it needs no privilege and changes
nothing outside the process:
- ``PR_SET_NO_NEW_PRIVS``: a setuid binary gains nothing (and seccomp and Landlock need it);
- seccomp (through pyseccomp, over libseccomp): no new process (fork, vfork, clone without CLONE_THREAD;
  threads stay, torch needs them), no execve, no memfd, no socket, no ptrace or process_vm_*, no io_uring,
  namespaces or bpf, signals only to itself; where torch is forbidden, also no new executable mapping once
  numpy and the allowed modules are imported (ctypes, cffi and extensions the submission writes cannot load);
- Landlock where the kernel has it: read only the interpreter's standard library, the allowed packages (all of
  its sys.path for a child that may use torch, numpy alone otherwise), the sandbox folder and a few system files;
  write only the scratch folder; no TCP (ABI 4), no signal or abstract unix socket out of the child (ABI 6).

``confine`` applies what the machine offers and says what it applied; the grader's preflight runs a child and
asks it, and refuses to grade without seccomp unless told to accept the risk.
"""
import ctypes
import errno
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
CLONE_THREAD = 0x00010000
PROT_EXEC = 0x4
# Modules with native code a numpy-only child may use, loaded before executable mappings are refused (those a
# Python build has built in, or lacks, cost nothing).
NUMPY_ONLY_IMPORTS = ("numpy.random", "numpy.linalg", "numpy.fft", "math", "cmath", "random", "decimal", "json",
                      "heapq", "bisect", "array", "struct", "statistics", "datetime", "pickle", "hashlib", "queue",
                      "unicodedata", "zlib", "binascii", "csv", "fractions")
DENIED = ("fork", "vfork", "execve", "execveat", "memfd_create", "memfd_secret", "socket", "socketpair",
          "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
          "tkill", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
          "userfaultfd", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "keyctl", "add_key",
          "request_key", "kcmp", "mount_setattr", "open_tree", "move_mount", "fsopen", "fsmount",
          # System V shared memory and message queues outlive the process (memory no process holds);
          # personality(READ_IMPLIES_EXEC) would make readable mappings executable behind the filter's back.
          "shmget", "mq_open", "personality")
SYSTEM_READ = ("/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo", "/dev/urandom", "/dev/random",
               "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu",
               "/sys/fs/cgroup")
SYSTEM_WRITE = ("/dev/null",)
# Shared libraries a torch child loads as it imports torch (libstdc++, libgomp, ...).
LIBRARY_FOLDERS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")

# Landlock (include/uapi/linux/landlock.h)
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ALL_V1 = (1 << 13) - 1                      # execute ... make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number, *args):
    result = _libc.syscall(number, *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def landlock_abi():
    """The Landlock ABI version the kernel offers (0: none, or disabled)."""
    try:
        return _syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def _landlock(abi, readable, writable):
    handled = FS_ALL_V1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0) \
        | (FS_IOCTL_DEV if abi >= 5 else 0)
    attr = RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                       SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    read = FS_READ_FILE | FS_READ_DIR
    write = handled & ~FS_EXECUTE
    try:
        for paths, access in ((readable, read), (writable, write)):
            for path in dict.fromkeys(paths):
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue   # not on this machine
                try:
                    allowed = access if os.path.isdir(path) else access & FILE_ONLY
                    rule = PathBeneathAttr(allowed & handled, fd)
                    _syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
                finally:
                    os.close(fd)
        _syscall(RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)


def _seccomp(sc, numpy_only):
    refuse = sc.ERRNO(errno.EPERM)
    rules = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(refuse, name)
        except (OSError, RuntimeError, ValueError):
            continue   # not a syscall on this architecture
    rules.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    # clone3's flags sit in memory seccomp cannot read: ENOSYS makes glibc fall back to clone, checked above.
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    pid = os.getpid()
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        rules.add_rule(refuse, name, sc.Arg(0, sc.NE, pid))
    if numpy_only:
        for name, prot in (("mmap", 2), ("mprotect", 2), ("pkey_mprotect", 2)):
            rules.add_rule(refuse, name, sc.Arg(prot, sc.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    rules.load()


def confine(numpy_only, sandbox, scratch):
    """Confine this process for good; return what was applied, e.g. ["seccomp", "landlock ABI 7"].

    ``numpy_only``: the child may not use torch (no new executable mappings, only numpy granted);
    ``sandbox``: the folder of the grader's files and the student's (read); ``scratch``: the child's own (write).
    """
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    try:   # before Landlock: its module and libseccomp may lie outside what the child keeps
        import pyseccomp
    except (ImportError, OSError):   # no pyseccomp or no libseccomp: see below
        pyseccomp = None
    applied = []
    if numpy_only:
        import importlib
        for name in NUMPY_ONLY_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
    abi = landlock_abi()
    if abi:
        import numpy
        stdlib = os.path.dirname(os.__file__)
        packages = [os.path.dirname(numpy.__file__), os.path.dirname(numpy.__file__) + ".libs"] if numpy_only \
            else [p for p in sys.path if p] + list(LIBRARY_FOLDERS)
        _landlock(abi, [stdlib, *packages, sandbox, *SYSTEM_READ], [scratch, *SYSTEM_WRITE])
        applied.append(f"landlock ABI {abi}")
    if pyseccomp is None:
        return applied
    try:
        _seccomp(pyseccomp, numpy_only)
    except OSError:   # a kernel without seccomp: the preflight says so
        return applied
    return ["seccomp", *applied]
