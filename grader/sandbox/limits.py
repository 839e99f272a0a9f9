"""What a child may use, and measuring what it uses.

Time is the grader's to enforce, from outside: each call has its budget, each plan a wall budget, and each part
one budget for everything its children take (starting, importing, every call, cleaning up), and the CPU time
of every thread of a child beyond the time it was asked for (threads computing between calls) too. Memory is
watched from outside: the child's resident memory, read from its own counters (it can start no process and
write no file); where the grader may make a cgroup for the child, the kernel caps it as well. rlimits cap
what the kernel can cap cheaply, CPU time among them (a child's limit is what its part has left).
"""
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox import identity

TICKS = os.sysconf("SC_CLK_TCK")
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class Limits:
    wall_seconds: float = 30.0     # one plan, all its children together (one layers family: about 1 s)
    # One call of a student function, timed by the grader. A scalar 7-loop conv takes 0.04 s CPU on the
    # largest hidden case here, its 12-point numerical-gradient step 0.54 s (given 4 calls' time): both keep
    # over 5x headroom on half a CPU. A function that hangs costs this once, then is not called again.
    call_seconds: float = 2.0
    import_seconds: float = 20.0   # starting a child and importing the student's module (torch: about 3 s)
    # Per part (``spent`` is shared by the plans of one part; the grader gives each part a fresh Spent):
    # everything its children may take in all, starting, importing, every call and cleaning up (the solutions'
    # slowest part, ResNet, takes about 4 s here), and what calls that time out may cost of it (a file hanging
    # in every function costs this, not 2 s per function).
    part_seconds: float = 15.0
    hang_seconds: float = 8.0
    spent: "Spent" = field(default=None, repr=False, compare=False)   # None: one per run
    cpu_seconds: int = 120
    memory_mb: int = 450           # resident memory of the child's process
    processes: int = 32            # processes and threads of the sandbox user
    file_mb: int = 64              # largest file the child may write, and largest answer it may send
    # What the grader keeps of one plan's answers until its verdicts (the largest plan, an initializer's, sends
    # back about 10 MB): without a cap, many answers near file_mb each would fill the grader's own memory.
    kept_mb: int = 128
    output_kb: int = 64            # stdout + stderr kept (the rest is read and dropped)


@dataclass
class Spent:
    """Seconds the children of one part have taken so far: in all, in calls that timed out, and CPU seconds its
    threads used while no call ran."""
    total: float = 0.0
    hung: float = 0.0
    background: float = 0.0


def memory_mb(pid):
    """MB of memory process ``pid`` holds, from its own counters: its resident memory and its page tables (which a
    sparse mapping can make larger than what it touches). A child can start no process and write no file
    (policy.py), so what it holds is its one process's. 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return sum(int(status.split(f"\n{field}:", 1)[1].split()[0]) for field in ("VmRSS", "VmPTE")) / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_used(pid):
    """CPU seconds every thread of process ``pid`` has used; 0 once it is gone."""
    try:
        # Fields after the command name (which may hold spaces): utime and stime are [11] and [12].
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


# Address space of every child (the oracle's too): what torch reserves, and a bound on the page tables the kernel
# keeps for it outside its resident memory.
ADDRESS_SPACE = 8 << 30


def threads_of(uid):
    """Threads of ``uid``'s processes (without a uid of its own, the child's process cap must leave room)."""
    total = 0
    for pid in identity.processes_of(uid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(status.split("Threads:", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total
