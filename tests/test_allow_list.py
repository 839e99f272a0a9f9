"""Issue 21: a child may make only the system calls its kind's allow-list names (grader/sandbox/policy.py), every
resource it holds is counted, and nothing of it is left.

Each test runs a real confined child (``sandbox.run`` with the task's ``kind``) whose module makes raw system
calls through ctypes; the table is checked against the filter libseccomp actually builds from it.
"""
import errno
import os
import re
import textwrap
import time

import numpy as np
import pytest

from grader import sandbox
from grader.sandbox import confine, identity, policy
from support import needs_cgroup

pyseccomp = pytest.importorskip("pyseccomp")
ARCH = pyseccomp.system_arch()
LIMITS = sandbox.Limits(wall_seconds=60, call_seconds=20, part_seconds=60)


def run_calls(kind, source, *args, limits=LIMITS):
    """The value of ``f(*args)`` defined by ``source`` in a child of ``kind`` (the failure's text if it failed)."""
    task = {"module": "m", "kind": kind, "forbidden": ["torch"] if kind == policy.NUMPY else [],
            "steps": [{"id": "a", "call": "f", "args": [{"v": a} for a in args]}]}
    module = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n" + textwrap.dedent(source)
    record = sandbox.run({"m.py": module.encode()}, task, {}, limits).records["a"]
    return record["value"] if record["ok"] else record["error"]


def number(call):
    try:
        return pyseccomp.resolve_syscall(ARCH, call)
    except (OSError, RuntimeError, ValueError):
        return None


def every_call():
    """{number: name} of every system call libseccomp knows on this architecture."""
    calls = {}
    for n in range(1024):
        try:
            name = pyseccomp.resolve_syscall(ARCH, n)
        except (OSError, RuntimeError, ValueError):
            continue
        if name:
            calls[n] = name.decode() if isinstance(name, bytes) else name
    return calls


@pytest.mark.parametrize("kind", policy.KINDS)
def test_the_filter_a_kind_loads_allows_exactly_the_calls_of_its_table(kind, tmp_path):
    rules = confine.build_filter(pyseccomp, policy, kind, os.getpid())
    with open(tmp_path / "filter.pfc", "w") as out:
        rules.export_pfc(out)
    text = (tmp_path / "filter.pfc").read_text()
    allowed, fallback = set(), set()
    # libseccomp's readable form: a syscall's block, then its action (ALLOW, or ERRNO(n) for a fallback).
    for block in re.split(r"# filter for syscall ", text)[1:]:
        name = block.split('"')[1]
        (allowed if "action ALLOW" in block else fallback).add(name)
    expected = {call for call in policy.allowed(kind) if number(call) is not None}
    assert allowed == expected
    assert fallback == {call for call in policy.FALLBACK if number(call) is not None}
    assert "action ERRNO(1);" in text.split("# default action")[1]   # EPERM for everything else
    assert policy.name(kind) == f"seccomp allow-list ({kind}), {len(policy.allowed(kind))} calls"


WALK = """
def f(numbers):
    refused, wrong = 0, []
    for n in numbers:
        ctypes.set_errno(0)
        result = libc.syscall(n, 0, 0, 0, 0, 0, 0)
        code = ctypes.get_errno()
        if result == -1 and code == EXPECTED.get(n, 1):
            refused += 1
        else:
            wrong.append([n, result, code])
    return [refused, wrong]
"""


@pytest.mark.parametrize("kind", policy.KINDS)
def test_every_call_off_a_kinds_list_is_refused_inside_a_confined_child(kind):
    calls = every_call()
    off = sorted(n for n, name in calls.items() if name not in policy.allowed(kind))
    expected = {n: errno.ENOSYS for n, name in calls.items() if name in policy.FALLBACK}
    refused, wrong = run_calls(kind, f"EXPECTED = {expected!r}\n" + WALK, off)
    assert wrong == [] and refused == len(off) > 250, [(calls[n], result, code) for n, result, code in wrong]


ATTEMPTS = """
import ctypes, os, signal
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
RLIMIT_FSIZE = 1

class Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]

def call(name, *args):
    ctypes.set_errno(0)
    result = getattr(libc, name)(*args)
    return "refused" if result == -1 and ctypes.get_errno() == 1 else f"done ({result}, errno {ctypes.get_errno()})"

def f(other):
    zero = Rlimit(0, 0)
    mask = (ctypes.c_ulong * 16)()
    return {
        "prlimit on another process": call("prlimit", other, RLIMIT_FSIZE, ctypes.byref(zero), None),
        "setpriority PRIO_USER": call("setpriority", PRIO_USER, os.getuid(), 19),
        "setpriority PRIO_PGRP": call("setpriority", PRIO_PGRP, 0, 19),
        "setpriority on another process": call("setpriority", PRIO_PROCESS, other, 19),
        "getpriority PRIO_USER": call("getpriority", PRIO_USER, os.getuid()),
        "sched_setaffinity on another": call("sched_setaffinity", other, ctypes.sizeof(mask), mask),
        "sched_getaffinity on another": call("sched_getaffinity", other, ctypes.sizeof(mask), mask),
        "kill another": call("kill", other, 0),
        "kill its group": call("kill", 0, 0),
        "kill every process": call("kill", -1, 0),
        "ioprio_set on another": call("syscall", 251, 1, other, 0),
        "ioctl TIOCSTI": call("ioctl", 1, 0x5412, ctypes.byref(ctypes.c_char(b"x"))),
        "fcntl F_SETOWN": call("fcntl", 1, 8, other),
        "prctl PR_SET_DUMPABLE": call("prctl", 4, 0, 0, 0, 0),
        "open for writing": call("open", b"/dev/null", os.O_WRONLY),
        "semget": call("semget", 0, 250, 0o1600),
        "msgget": call("msgget", 0, 0o1600),
        "shmget": call("shmget", 0, 4096, 0o1600),
        "io_setup": call("syscall", 206, 128, ctypes.byref(ctypes.c_ulong(0))),
        "own priority": call("setpriority", PRIO_PROCESS, 0, 1),
        "own limits": call("prlimit", 0, RLIMIT_FSIZE, None, ctypes.byref(zero)),
        "own affinity": call("sched_getaffinity", 0, ctypes.sizeof(mask), mask),
        "signal to itself": call("kill", os.getpid(), 0),
    }
"""
OWN = ("own priority", "own limits", "own affinity", "signal to itself")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the raw numbers of ioprio_set and io_setup are x86_64's")
@pytest.mark.parametrize("kind", [policy.NUMPY, policy.TORCH])
def test_calls_naming_another_process_work_on_the_child_only(kind):
    grader = os.getpid()
    before = os.getpriority(os.PRIO_USER, os.getuid()), os.getpriority(os.PRIO_PROCESS, grader)
    outcome = run_calls(kind, ATTEMPTS, grader)
    assert {k: v for k, v in outcome.items() if k not in OWN} == {k: "refused" for k in outcome if k not in OWN}
    assert all(outcome[k].startswith("done") for k in OWN), outcome
    assert (os.getpriority(os.PRIO_USER, os.getuid()), os.getpriority(os.PRIO_PROCESS, grader)) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of the child's own, and IPC objects of that uid, need root")
def test_ipc_objects_a_uid_holds_are_removed_by_the_sweep():
    # The allow-list refuses IPC; the sweep is the net behind it. Make a semaphore set as a fresh uid, as a child
    # would have, and see the sweep free it.
    uid = identity.fresh_uid()
    helper = os.fork()
    if helper == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            import ctypes
            os._exit(0 if ctypes.CDLL(None).semget(0, 8, 0o1600) >= 0 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(helper, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [table for table, _ in identity.ipc_objects(uid)] == ["sem"]
    assert identity.clean_up(uid)
    assert identity.ipc_objects(uid) == [] and identity.leftovers(uid) == []


SPINNER = """
import threading
import numpy as np

def spin():
    a = np.ones((200, 200))
    while True:
        a @ a   # releases the GIL: on a free core, CPU time beside the call's

def start():
    for _ in range(3):
        threading.Thread(target=spin, daemon=True).start()

def f():
    import time
    time.sleep(0.25)
    return 1
"""


@pytest.fixture
def three_free_cores(monkeypatch):
    """The child's threads as they run on a machine with cores to spare: its CPU time grows three times as fast
    as the wall clock (a loaded test machine would give them less, and the part its share)."""
    from grader.sandbox import runner

    started = {}

    def cpu_used(pid):
        return real(pid) + 3 * (time.monotonic() - started.setdefault(pid, time.monotonic()))
    real = runner.cpu_used
    monkeypatch.setattr(runner, "cpu_used", cpu_used)


def test_threads_left_computing_after_a_call_are_charged_to_the_part(three_free_cores):
    # Calls of 0.25 s each, 24 in all (6 s): the wall time alone stays inside the 5 s budget until the 20th
    # call; the threads' CPU beside the calls spends it sooner, and that is what the student is told.
    spent = sandbox.Spent()
    limits = sandbox.Limits(wall_seconds=60, call_seconds=5, part_seconds=5, spent=spent)
    steps = [{"id": "start", "call": "start"}] + [{"id": f"c{i}", "call": "f"} for i in range(24)]
    task = {"module": "m", "kind": policy.TORCH, "forbidden": [], "steps": steps}
    result = sandbox.run({"m.py": SPINNER.encode()}, task, {}, limits)
    answered = sum(result.records[f"c{i}"]["ok"] for i in range(24))
    assert spent.background > 1 and answered < 12, (spent, answered)
    assert "kept computing after it returned" in result.problem, result.problem
    assert "kept computing after it returned" in result.records["c23"]["error"]


def test_the_milestones_threads_are_not_charged(three_free_cores):
    spent = sandbox.Spent()
    limits = sandbox.Limits(wall_seconds=60, call_seconds=5, part_seconds=5, spent=spent)
    steps = [{"id": f"c{i}", "call": "f"} for i in range(4)]
    task = {"module": "m", "kind": policy.MILESTONE, "forbidden": [], "steps": steps}
    result = sandbox.run({"m.py": SPINNER.encode()}, task, {}, limits)
    assert all(result.records[f"c{i}"]["ok"] for i in range(4)) and spent.background == 0


def test_the_memory_watch_reads_the_childs_own_counters():
    # 300 MB held by a child over a 200 MB limit: stopped, in every mode (no file or other process to hide it in).
    limits = sandbox.Limits(wall_seconds=30, call_seconds=10, memory_mb=200)
    # 20 MB at a time, as a growing array would: the watch (ten times a second) stops it before the cgroup.
    source = "import numpy as np, time\ndef f():\n    held = []\n    for _ in range(15):\n" \
             "        held.append(np.ones(20 << 17))\n        time.sleep(0.05)\n    time.sleep(5)\n    return 1\n"
    task = {"module": "m", "kind": policy.NUMPY, "forbidden": ["torch"], "steps": [{"id": "a", "call": "f"}]}
    record = sandbox.run({"m.py": source.encode()}, task, {}, limits).records["a"]
    assert "used more than 200 MB of memory" in record["error"], record


def test_the_containment_line_names_each_kinds_allow_list_and_its_size():
    from grader import preflight

    line = preflight.check().line()
    for kind in policy.KINDS:
        assert f"{kind} {len(policy.allowed(kind))}" in line, line
    assert line.startswith("containment: seccomp allow-lists (calls: ")


ROUTES = {
    "numpy's flag": "x[...] = 0",
    "the flag set back": "x.flags.writeable = True\n    x[...] = 0",
    "__array_interface__": "class View:\n        __array_interface__ = dict(x.__array_interface__, "
                           "data=(x.__array_interface__['data'][0], False))\n    np.asarray(View())[...] = 0",
    "np.frombuffer of its memory": "import ctypes\n    raw = (ctypes.c_char * x.nbytes).from_address(x.ctypes.data)\n"
                                   "    np.frombuffer(raw, dtype=x.dtype)[...] = 0",
    "stride_tricks": "np.lib.stride_tricks.as_strided(x, writeable=True)[...] = 0",
    "ctypes.memset": "import ctypes\n    ctypes.memset(x.ctypes.data, 0, x.nbytes)",
    "mprotect": "import ctypes\n    libc = ctypes.CDLL(None, use_errno=True)\n    page = x.ctypes.data & ~4095\n"
                "    if libc.mprotect(ctypes.c_void_p(page), 4096, 3) != 0:\n"
                "        raise PermissionError(ctypes.get_errno(), 'mprotect refused')\n    x[...] = 0",
    "its descriptor reopened for writing": "for fd in os.listdir('/proc/self/fd'):\n"
                                           "        open(f'/proc/self/fd/{fd}', 'r+b').write(bytes(x.nbytes))",
}


@pytest.mark.parametrize("kind", [policy.NUMPY, policy.TORCH])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_arguments_handed_read_only_cannot_be_written_by_any_route(kind, route):
    source = "import os\nimport numpy as np\ndef f(x):\n    " + ROUTES[route] + "\n    return float(x.sum())\n" \
             "def g(x):\n    return float(x.sum())\n"
    x = np.arange(1.0, 7.0)
    task = {"module": "m", "kind": kind, "forbidden": ["torch"] if kind == policy.NUMPY else [],
            "steps": [{"id": "f", "call": "f", "args": [{"in": "x", "read_only": True}]},
                      {"id": "g", "call": "g", "args": [{"in": "x", "read_only": True}]}]}
    result = sandbox.run({"m.py": source.encode()}, task, {"x": x}, LIMITS)
    edit = result.records["f"]
    # The edit fails (numpy's error, the kernel's refusal, or a fault the grader reports as the in-place edit),
    # and the same memory, handed again, holds what the grader put there.
    assert not edit["ok"] and (edit.get("in_place") is not None or "Error" in edit["error"]), edit
    assert result.records["g"]["value"] == 21.0


def test_results_json_and_every_regrade_log_say_what_confined_the_children(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    from grader.paths import REPO
    from grader.regrade import regrade

    submission = tmp_path / "export" / "submission_1"
    submission.mkdir(parents=True)
    shutil.copy(REPO / "solutions" / "cnn" / "quiz.py", submission)
    completed = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--part", "quiz", "--out",
                                str(tmp_path / "results.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("containment: "))
    assert "seccomp allow-lists (calls: numpy " in line
    assert json.loads((tmp_path / "results.json").read_text())["extra_data"]["containment"] == line
    regrade(tmp_path / "export", tmp_path / "out", parts=["quiz"], jobs=1, containment=line)
    (log,) = (tmp_path / "out" / "logs").iterdir()
    assert log.read_text().splitlines()[0] == line
    (result,) = (tmp_path / "out").glob("*.json")
    assert json.loads(result.read_text())["extra_data"]["containment"] == line


DESCRIPTORS = """
import builtins, os

def f(secret):
    builtins.left_by_an_earlier_submission = secret   # what a child of the same template would find, if anything
    return sorted(f"{fd} {os.readlink(f'/proc/self/fd/{fd}').split(':')[0]}" for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}") or os.path.islink(f"/proc/self/fd/{fd}"))

def g():
    return getattr(builtins, "left_by_an_earlier_submission", None)
"""


@pytest.mark.parametrize("kind", [policy.NUMPY, policy.TORCH])
def test_a_forked_child_holds_only_its_own_descriptors_and_nothing_of_another_submission(kind):
    steps = [{"id": "f", "call": "f", "args": [{"v": "answers of submission A"}]}, {"id": "g", "call": "g"}]
    task = {"module": "m", "kind": kind, "forbidden": ["torch"] if kind == policy.NUMPY else [], "steps": steps}
    first = sandbox.run({"m.py": DESCRIPTORS.encode()}, task, {}, LIMITS)
    held = first.records["f"]["value"]
    # stdin (/dev/null), stdout and stderr (one pipe), the command and reply pipes, the arguments' memfd: no
    # socket, no file of the template's.
    assert held == ["0 /dev/null", "1 pipe", "2 pipe", "3 pipe", "4 pipe", "5 /memfd"], held
    assert first.records["g"]["value"] == "answers of submission A"
    second = sandbox.run({"m.py": DESCRIPTORS.encode()}, dict(task, steps=[{"id": "g", "call": "g"}]), {}, LIMITS)
    assert second.records["g"] == {"ok": True, "error": "", "seconds": second.records["g"]["seconds"], "value": None}


@needs_cgroup
def test_a_child_its_own_cgroup_stops_is_told_it_used_too_much_memory():
    # 1 GB at once, faster than the watch looks: the kernel stops it at its cgroup's limit, and that is the
    # student's own limit (cgroup v1 kernels may leave failcnt at 0: the group's peak says it).
    limits = sandbox.Limits(wall_seconds=30, call_seconds=10, memory_mb=200)
    source = "import numpy as np\ndef f():\n    return float(np.ones(1 << 27).sum())\n"
    task = {"module": "m", "kind": policy.NUMPY, "forbidden": ["torch"], "steps": [{"id": "a", "call": "f"}]}
    record = sandbox.run({"m.py": source.encode()}, task, {}, limits).records["a"]
    assert record["error"] == "your code used more than 200 MB of memory and was stopped", record


def test_a_sparse_mapping_counts_its_page_tables():
    # A terabyte reserved and touched every 2 MB holds few resident pages but gigabytes of page tables, which
    # the kernel keeps for the child: the address-space limit refuses the reservation, and the watch counts them.
    source = """
import ctypes
def f():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    address = libc.mmap(None, 1 << 40, 1, 0x22 | 0x4000, -1, 0)   # read-only, private, anonymous, no reserve
    return "mapped" if address not in (None, 2 ** 64 - 1) else os.strerror(ctypes.get_errno())
"""
    assert run_calls(policy.NUMPY, source) == os.strerror(errno.ENOMEM)


FORGED = r"""
import json, struct, sys, time

def f(what):
    print("pid", os.getpid(), flush=True)
    frame = sys._getframe()
    while frame is not None and "command" not in frame.f_locals:
        frame = frame.f_back
    nonce = frame.f_locals["command"]["nonce"]   # the call being asked: a reply the grader reads
    value, listing = ({"__ndarray__": "0"}, [["0", "<f8", [1e999]]]) if what == "array" \
        else ({"__float__": 10 ** 400}, [])
    head = json.dumps({"nonce": nonce, "ok": True, "seconds": 0.0, "value": value, "arrays": listing}).encode()
    reply = struct.pack(">I", len(head)) + head
    os.write(4, struct.pack(">I", len(reply)) + reply)
    time.sleep(600)   # never back to the driver: only a kill ends it
"""


@pytest.mark.parametrize("what", ["array", "float"])
def test_a_forged_reply_the_grader_cannot_read_costs_the_call_and_leaves_no_process(what):
    task = {"module": "m", "kind": policy.NUMPY, "forbidden": ["torch"],
            "steps": [{"id": "a", "call": "f", "args": [{"v": what}]}]}
    source = "import os\n" + FORGED
    result = sandbox.run({"m.py": source.encode()}, task, {}, LIMITS)
    assert result.records["a"]["error"].startswith("returned something the grader cannot read"), result.records
    pid = int(result.output.split()[1])   # what it printed: its pid, gone once its plan ended
    assert not os.path.exists(f"/proc/{pid}"), pid
