"""A sandboxed child confines itself, before the student's module is imported: from then on the kernel refuses
what student code may not do, and the refusal is the student's own error (PermissionError from os.fork, ...).

This file is copied beside driver.py (with policy.py) into the sandbox and imported by it; it needs no privilege
and changes nothing outside the process:
- ``PR_SET_NO_NEW_PRIVS``: a setuid binary gains nothing (and seccomp and Landlock need it);
- seccomp (through pyseccomp, over libseccomp): the allow-list of the child's kind (policy.py); every other call
  is refused: no new process, no execve, no file opened for writing, no IPC, socket, namespace or keyring, and
  calls naming a process only on itself;
- Landlock where the kernel has it: read only the interpreter's standard library, the allowed packages (all of
  its sys.path for a child that may use torch, numpy alone otherwise), the sandbox folder and a few system files;
  write nothing; no TCP (ABI 4), no signal or abstract unix socket out of the child (ABI 6).

``confine`` applies what the machine offers and says what it applied; the grader's preflight runs a child and
asks it, and refuses to grade without seccomp unless told to accept the risk. The oracle child (grader code on
trusted values) loads its kind's allow-list too, without Landlock.
"""
import ctypes
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
# Modules with native code a numpy-only child may use, loaded before executable mappings are refused (those a
# Python build has built in, or lacks, cost nothing).
NUMPY_ONLY_IMPORTS = ("numpy.random", "numpy.linalg", "numpy.fft", "math", "cmath", "random", "decimal", "json",
                      "heapq", "bisect", "array", "struct", "statistics", "datetime", "pickle", "hashlib", "queue",
                      "unicodedata", "zlib", "binascii", "csv", "fractions")
SYSTEM_READ = ("/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo", "/dev/urandom", "/dev/random",
               "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu",
               "/sys/fs/cgroup")
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


def _landlock(abi, readable):
    """Grant reading ``readable`` (folders or files) and nothing else of the file system."""
    handled = FS_ALL_V1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0) \
        | (FS_IOCTL_DEV if abi >= 5 else 0)
    attr = RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                       SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    read = FS_READ_FILE | FS_READ_DIR
    try:
        for path in dict.fromkeys(readable):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue   # not on this machine
            try:
                rule = PathBeneathAttr((read if os.path.isdir(path) else read & FILE_ONLY) & handled, fd)
                _syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
            finally:
                os.close(fd)
        _syscall(RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)


def _policy():
    """policy.py, beside this file (in the sandbox as in the grader's package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("convlab_policy", os.path.join(os.path.dirname(__file__),
                                                                                "policy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_filter(sc, policy, kind, pid):
    """The seccomp filter of ``kind``'s allow-list (not loaded): default EPERM, each row's call allowed where one
    of its conditions holds. Rows naming a call this architecture lacks are left out."""
    rules = sc.SyscallFilter(sc.ERRNO(policy.DEFAULT_ERRNO))
    for call, condition, _ in policy.rows(kind):
        try:
            sc.resolve_syscall(sc.system_arch(), call)
        except (OSError, RuntimeError, ValueError):
            continue   # not a call on this architecture
        for alternative in condition or [()]:
            args = [sc.Arg(index, sc.EQ, pid if value == policy.SELF else value)
                    if op == policy.EQ else sc.Arg(index, sc.MASKED_EQ, value, rest[0])
                    for index, op, value, *rest in alternative]
            rules.add_rule(sc.ALLOW, call, *args)
    for call in policy.FALLBACK:
        try:
            rules.add_rule(sc.ERRNO(policy.FALLBACK_ERRNO), call)
        except (OSError, RuntimeError, ValueError):
            continue
    return rules


def confine(kind, sandbox=None, scratch=None):
    """Confine this process for good; return what was applied, e.g. ["seccomp allow-list (numpy), 58 calls",
    "landlock ABI 7"].

    ``kind``: the kind of child (policy.KINDS); ``sandbox``: the folder of the grader's files and the student's
    (read), or None for no Landlock (the oracle); ``scratch``: the child's working folder (read).
    """
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    policy = _policy()
    try:   # before Landlock: its module and libseccomp may lie outside what the child keeps
        import pyseccomp
    except (ImportError, OSError):   # no pyseccomp or no libseccomp: see below
        pyseccomp = None
    applied = []
    numpy_only = kind == policy.NUMPY
    if numpy_only:
        import importlib
        for name in NUMPY_ONLY_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
    abi = landlock_abi() if sandbox is not None else 0
    if abi:
        import numpy
        stdlib = os.path.dirname(os.__file__)
        packages = [os.path.dirname(numpy.__file__), os.path.dirname(numpy.__file__) + ".libs"] if numpy_only \
            else [p for p in sys.path if p] + list(LIBRARY_FOLDERS)
        _landlock(abi, [stdlib, *packages, sandbox, scratch, *SYSTEM_READ])
        applied.append(f"landlock ABI {abi}")
    if pyseccomp is None:
        return applied
    try:
        build_filter(pyseccomp, policy, kind, os.getpid()).load()
    except OSError:   # a kernel without seccomp: the preflight says so
        return applied
    return [policy.name(kind), *applied]
