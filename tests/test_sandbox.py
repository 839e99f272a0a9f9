"""The sandbox's own guarantees that are not about a submission."""
import os
import subprocess
import sys

import pytest

from grader import paths, sandbox
from grader.sandbox import channel, identity


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are only allocated when the grader runs as root")
def test_every_child_gets_a_uid_never_used_before_and_no_other_grader_process_gets_it():
    mine = [identity.fresh_uid() for _ in range(3)]
    assert len(set(mine)) == 3
    # The other process starts its search where this one did (same pid-derived offset): the lock moves it on.
    code = (f"import os; os.getpid = lambda: {os.getpid()}; from grader.sandbox import identity; "
            "print(identity.fresh_uid())")
    env = dict(os.environ, PYTHONPATH=str(paths.REPO))
    other = int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                               check=True).stdout)
    assert other not in mine and other >= identity.UID_BASE


def test_decoding_builds_plain_data_only():
    import numpy as np

    encoded = {"__tuple__": [{"__int__": "3"}, {"__float__": "0.5"}, {"__list__": [True, None, "s"]},
                             {"__dict__": [["k", {"__int__": "1"}]]}]}
    assert sandbox.decode(encoded) == (3, 0.5, [True, None, "s"], {"k": 1})
    with pytest.raises(ValueError):
        sandbox.decode({"__object__": "os.system"})
    assert isinstance(sandbox.decode(1.0), float) and not isinstance(sandbox.decode({"__int__": "2"}), np.ndarray)


def test_student_text_reads_as_written_but_cleaned():
    # Hidden values are drawn per submission, so the numbers in a student's message are no secret: a state_dict
    # key, an errno and a number in words reach them as their code wrote them; escapes and control characters
    # do not.
    failure = {"type": "FileNotFoundError",
               "message": "[Errno 2] no layer2.0.downsample.0.weight in \x1b[31mtwo\x1b[0m\nfiles of 3 (0x1f)"}
    assert channel.describe_failure(failure, {}) == \
        "FileNotFoundError: [Errno 2] no layer2.0.downsample.0.weight in two files of 3 (0x1f)"
    assert channel.describe_failure({"type": "Float64Error", "message": ""}, {}) == "Float64Error"
    assert channel.describe_failure({"type": "\x1b[0m", "message": "x" * 400}, {}) == \
        "Exception: " + "x" * 300 + "..."
    assert channel.type_words("Conv2dOutput") == "a Conv2dOutput"
    assert channel.type_words("\x1b[2J") == "a value"


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace of its own needs root")
def test_the_child_has_no_network():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    probe = (b"import socket\n"
             b"def connect(port):\n"
             b"    try:\n"
             b"        socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
             b"        return 'connected'\n"
             b"    except OSError as error:\n"
             b"        return type(error).__name__\n")
    task = {"module": "probe", "steps": [{"id": "c", "call": "connect", "args": [{"v": port}]}]}
    result = sandbox.run({"probe.py": probe}, task, {}, sandbox.Limits(wall_seconds=20))
    assert result.records["c"]["ok"] and result.records["c"]["value"] != "connected"
    with pytest.raises(BlockingIOError):
        server.accept()   # nobody knocked
    server.close()
