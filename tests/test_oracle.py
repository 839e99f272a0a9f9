"""grader/oracle.py runs the grader's torch computations in a child of their own, exchanging the sandbox's frames
(JSON and raw numeric arrays, never a pickle); grader/cpus.py gives that child, and the milestone's, the threads
the container's CPU quota grants."""
import os

import numpy as np
import pytest

from grader import cpus, oracle
from grader.cnn.oracles import layers


def test_values_cross_with_their_types():
    value = {"x": np.arange(6.0).reshape(2, 3), "pair": (np.int64(3), "max"), "list": [None, True, 2.5, []],
             "ints": np.array([1, 2], dtype=np.int64)}
    back = oracle.unpack(oracle.pack(value)[4:])   # the frame, its length cut off
    assert back.keys() == value.keys()
    assert np.array_equal(back["x"], value["x"]) and back["x"].dtype == np.float64
    assert back["pair"] == (3, "max") and type(back["pair"][0]) is int
    assert back["list"] == [None, True, 2.5, []]
    assert back["ints"].dtype == np.int64


@pytest.mark.parametrize("value", [np.array([object()]), {1: 2}, {1, 2}])
def test_what_is_not_plain_data_is_refused(value):
    with pytest.raises(TypeError):
        oracle.pack(value)


def test_the_child_answers_as_the_module_does_and_reports_its_errors():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    with oracle.Oracle("grader.cnn.oracles.layers") as remote:
        assert np.array_equal(remote.conv_forward(x, w, b, 1, 1), layers.conv_forward(x, w, b, 1, 1))
        dx, dw, db = remote.conv_backward(x, w, b, 2, 0, np.ones((2, 4, 2, 1)))
        assert np.array_equal(db, [4.0] * 4)
        with pytest.raises(oracle.OracleError, match="missing 1 required positional argument: 'pad'"):
            remote.conv_forward(x, w, b, 1)
        child = remote.proc
        assert remote.conv_forward(x, w, b, 1, 1).shape == (2, 4, 5, 4)   # the same child, still there
        assert remote.proc is child
    assert child.returncode == 0 and remote.proc is None


def test_one_child_serves_every_module_and_close_all_ends_it():
    layers_ref, probe = oracle.Oracle("grader.cnn.oracles.layers"), oracle.Oracle("grader.oracle")
    layers_ref.batchnorm_running_stats(np.ones((2, 3)), np.zeros(3), np.zeros(3))
    child = layers_ref.proc
    out, _ = probe.probe()
    assert probe.proc is child and out.shape == (1, 1, 2, 2)   # one torch start for both modules
    oracle.close_all()
    assert child.returncode == 0 and layers_ref.proc is probe.proc is None


def test_a_memoised_answer_starts_no_child_and_memoising_ends():
    x = np.arange(6.0).reshape(2, 3)
    was = oracle.memoise(True)
    try:
        with oracle.Oracle("grader.cnn.oracles.layers") as first:
            answer = first.batchnorm_running_stats(x, np.zeros(3), np.ones(3))
        second = oracle.Oracle("grader.cnn.oracles.layers")
        again = second.batchnorm_running_stats(x, np.zeros(3), np.ones(3))
        assert second.proc is None and all(np.array_equal(a, b) for a, b in zip(answer, again))
    finally:
        oracle.memoise(was)
    with oracle.Oracle("grader.cnn.oracles.layers") as third:   # off again: a child answers
        third.batchnorm_running_stats(x, np.zeros(3), np.ones(3))
        assert third.proc is not None


@pytest.mark.parametrize("membership, files, expected", [
    ("0::/course/job\n", {"course/cpu.max": "50000 100000", "course/job/cpu.max": "max 100000"}, 0.5),
    ("0::/\n", {"cpu.max": "150000 100000"}, 1.5),
    ("0::/job\n", {"cpu.max": "max 100000"}, None),
    ("4:memory:/x\n3:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/cpu.cfs_quota_us": "200000",
                                                 "cpu,cpuacct/docker/cpu.cfs_period_us": "100000",
                                                 "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1",
                                                 "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, 2.0),
])
def test_the_cpu_quota_is_the_tightest_on_the_cgroup_and_its_ancestors(tmp_path, membership, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    (tmp_path / "cgroup").write_text(membership)
    assert cpus.quota(tmp_path / "cgroup", tmp_path) == expected


def test_half_a_cpu_runs_one_thread(monkeypatch):
    monkeypatch.setattr(cpus, "quota", lambda: 0.5)
    assert cpus.container_cpus() == 1
    monkeypatch.setattr(cpus, "quota", lambda: None)
    assert cpus.container_cpus() == len(os.sched_getaffinity(0))
