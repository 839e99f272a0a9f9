"""What a sandboxed child may ask of the kernel: one allow-list per kind of child, in one table.

Everything not in the table is refused (EPERM: the student's own ``PermissionError``), whatever the kernel adds
later. The list was found by tracing every kind of child (``strace -f``, after the filter is loaded) on the
solutions, the stubs and broken submissions, then closed: a call is here because one of those runs made it.

Kinds of child:
- ``numpy``: a file that may not use torch (layers.py): numpy on one thread, no executable mapping;
- ``torch``: a file that may import torch (quiz.py, initializers.py, resnet.py);
- ``milestone``: the grader's functional ResNet on a checkpoint (milestone_child.py), on several threads;
- ``oracle``: the grader's PyTorch references (grader/oracle.py), on trusted values.

A row is (call, kinds, condition, why). A condition lists alternatives, each a tuple of argument comparisons
that must all hold: ``(index, EQ, value)``, or ``(index, MASKED_EQ, mask, value)`` (``arg & mask == value``);
the value ``SELF`` stands for the child's own pid. Calls that name a process are allowed on the child itself
only: nothing a child asks can reach the grader, another child, or any other process of the same user.

This file is copied beside driver.py and confine.py into the sandbox: it imports nothing but the standard library.
"""
import errno
import os

NUMPY, TORCH, MILESTONE, ORACLE = "numpy", "torch", "milestone", "oracle"
KINDS = (NUMPY, TORCH, MILESTONE, ORACLE)
ALL = KINDS
TORCHES = (TORCH, MILESTONE, ORACLE)      # torch loads its libraries and generates code: executable mappings
THREADED = (TORCH, MILESTONE, ORACLE)     # torch may start its thread pools

EQ, MASKED_EQ = "==", "&=="
SELF = "self"
PROT_EXEC = 0x4
CLONE_THREAD = 0x00010000
# Opening a file for anything but reading: a child writes no file (nothing it legitimately runs needs one).
# (O_TMPFILE includes O_DIRECTORY, which a read of a folder sets: only its own bit counts.)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND \
    | (getattr(os, "O_TMPFILE", 0) & ~os.O_DIRECTORY)
PRIO_PROCESS = 0
TCGETS, TIOCGWINSZ, FIONCLEX, FIOCLEX = 0x5401, 0x5413, 0x5450, 0x5451
F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 1, 2, 3, 4, 1030
PR_SET_NAME, PR_GET_NAME, PR_SET_VMA = 15, 16, 0x53564D41
ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM = 0x1002, 0x1003, 0x1022, 0x1023


def _self(index):
    """The call names this process (or, with 0, the calling thread)."""
    return [((index, EQ, 0),), ((index, EQ, SELF),)]


def _one_of(index, *values):
    return [((index, EQ, value),) for value in values]


READ_ONLY = [((1, MASKED_EQ, WRITE_FLAGS, 0),)]
READ_ONLY_AT = [((2, MASKED_EQ, WRITE_FLAGS, 0),)]
NOT_EXECUTABLE = [((2, MASKED_EQ, PROT_EXEC, 0),)]

ROWS = [
    # Reading what it was given: modules, the student's files, the command pipe.
    ("read", ALL, None, "the command pipe; modules and the student's files"),
    ("pread64", ALL, None, "zip imports and numpy's file reads"),
    ("readv", ALL, None, "buffered reads"),
    ("open", ALL, READ_ONLY, "modules, read-only: no file is written"),
    ("openat", ALL, READ_ONLY_AT, "modules, read-only: no file is written"),
    ("close", ALL, None, "its own descriptors"),
    ("lseek", ALL, None, "reading modules"),
    ("fstat", ALL, None, "the import system"),
    ("newfstatat", ALL, None, "the import system"),
    ("statx", ALL, None, "os.stat"),
    ("access", ALL, None, "os.access"),
    ("faccessat", ALL, None, "os.access"),
    ("getdents64", ALL, None, "listing a package folder on import"),
    ("readlink", ALL, None, "the interpreter's own path; torch's library paths"),
    ("readlinkat", ALL, None, "os.readlink"),
    ("getcwd", ALL, None, "os.getcwd, torch's import"),
    ("fcntl", ALL, _one_of(1, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC),
     "descriptor flags, and the copy mmap keeps of the arguments' descriptor (no locks, no F_SETOWN)"),
    ("ioctl", ALL, _one_of(1, TCGETS, TIOCGWINSZ, FIONCLEX, FIOCLEX),
     "isatty and close-on-exec only (no TIOCSTI into a terminal)"),
    # Answering: the reply pipe, stdout and stderr (read by the grader).
    ("write", ALL, None, "the reply pipe, stdout, stderr"),
    ("writev", ALL, None, "buffered writes to the same"),
    # Memory: its own.
    ("brk", ALL, None, "malloc"),
    ("mmap", (NUMPY,), NOT_EXECUTABLE, "memory; never executable (no native code the submission brings)"),
    ("mmap", TORCHES, None, "memory; torch's libraries and oneDNN's generated code are executable"),
    ("mprotect", (NUMPY,), NOT_EXECUTABLE, "memory; never executable"),
    ("mprotect", TORCHES, None, "loading torch's libraries; oneDNN's generated code"),
    ("munmap", ALL, None, "freeing memory"),
    ("mremap", ALL, None, "growing numpy's buffers"),
    ("madvise", ALL, None, "glibc and torch returning memory"),
    ("mbind", ALL, None, "numpy's memory placement on its own pages"),
    # Threads (torch's pools) and waiting.
    ("clone", THREADED, [((0, MASKED_EQ, CLONE_THREAD, CLONE_THREAD),)], "threads only, never a new process"),
    ("set_robust_list", THREADED, None, "a new thread's futex list"),
    ("rseq", THREADED, None, "a new thread's restartable sequences"),
    ("futex", ALL, None, "locks"),
    ("sched_yield", ALL, None, "OpenMP's spin-wait"),
    ("nanosleep", ALL, None, "time.sleep"),
    ("clock_nanosleep", ALL, None, "time.sleep"),
    ("clock_gettime", ALL, None, "process and thread CPU clocks (the vDSO has the rest)"),
    ("clock_getres", ALL, None, "time.get_clock_info"),
    ("gettimeofday", ALL, None, "old clocks"),
    ("restart_syscall", ALL, None, "a sleep resumed after a signal"),
    # Signals and exits: to itself only.
    ("rt_sigaction", ALL, None, "its own handlers"),
    ("rt_sigprocmask", ALL, None, "its own mask"),
    ("rt_sigreturn", ALL, None, "returning from a handler"),
    ("sigaltstack", ALL, None, "a thread's signal stack"),
    ("kill", ALL, [((0, EQ, SELF),)], "os.kill of itself only"),
    ("tgkill", ALL, [((0, EQ, SELF),)], "raise() in one of its own threads only"),
    ("exit", ALL, None, "a thread ends"),
    ("exit_group", ALL, None, "the process ends"),
    # About itself.
    ("getpid", ALL, None, "its own pid"),
    ("gettid", ALL, None, "its own thread id"),
    ("getuid", ALL, None, "its own ids"),
    ("geteuid", ALL, None, "its own ids"),
    ("getgid", ALL, None, "its own ids"),
    ("getegid", ALL, None, "its own ids"),
    ("uname", ALL, None, "platform checks on import"),
    ("sysinfo", ALL, None, "torch's memory query"),
    ("getrandom", ALL, None, "hash seeds, numpy's default_rng, tempfile names"),
    ("prctl", ALL, _one_of(0, PR_SET_NAME, PR_GET_NAME, PR_SET_VMA),
     "naming its own threads and mappings only (not dumpable, not no-new-privs undone)"),
    ("arch_prctl", THREADED, _one_of(0, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM),
     "a new thread's TLS; oneDNN's AMX permission"),
    ("prlimit64", ALL, _self(0), "reading or lowering its own limits only"),
    ("getpriority", ALL, [((0, EQ, PRIO_PROCESS), (1, EQ, 0)), ((0, EQ, PRIO_PROCESS), (1, EQ, SELF))],
     "its own priority only (never PRIO_USER or PRIO_PGRP)"),
    ("setpriority", ALL, [((0, EQ, PRIO_PROCESS), (1, EQ, 0)), ((0, EQ, PRIO_PROCESS), (1, EQ, SELF))],
     "os.nice of itself only (never PRIO_USER or PRIO_PGRP)"),
    ("sched_getaffinity", ALL, _self(0), "os.cpu_count, torch's thread count: its own"),
    ("sched_setaffinity", THREADED, _self(0), "torch pinning its own threads"),
]

# Refused with ENOSYS rather than EPERM, so that the library falls back on a call the list can check.
FALLBACK = {
    "clone3": "its flags sit in memory seccomp cannot read: glibc falls back on clone, checked above",
    "openat2": "its flags sit in memory seccomp cannot read: glibc falls back on openat",
    "faccessat2": "glibc falls back on faccessat",
}
DEFAULT_ERRNO = errno.EPERM
FALLBACK_ERRNO = errno.ENOSYS


def rows(kind):
    """The table's rows for ``kind``: [(call, condition, why)]."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of child {kind!r}")
    return [(call, condition, why) for call, kinds, condition, why in ROWS if kind in kinds]


def allowed(kind):
    """The calls ``kind`` may make (some only with the arguments its row names)."""
    return sorted({call for call, _, _ in rows(kind)})


def name(kind):
    """The policy in a few words, e.g. "seccomp allow-list (torch), 68 calls"."""
    return f"seccomp allow-list ({kind}), {len(allowed(kind))} calls"
