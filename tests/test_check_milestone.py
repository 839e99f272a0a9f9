"""The milestone part: test-time perturbations, the class-stratified sample, the score's thresholds, every bad
checkpoint (zero for the milestone alone, with a clear message), and checkpoints whose accuracy on a small test
set in the official format is known exactly."""
import io
import itertools
import json
import os
import shutil
import uuid

import numpy as np
import pytest
import torch

from grader.checks import Outcome
from grader.cnn import check_milestone, points
from grader.cnn.oracles import resnet as ref
from grader.grade import grade
from grader.sandbox import Limits
from conftest import data_env
from support import REPO, constant_state, in_container, needs_cgroup, write_cifar

NAMES = [check_milestone.CHECK_TEST, check_milestone.ACCURACY_TEST]


def _saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def checkpoint(state, arch="resnet20", num_classes=10):
    return _saved({"arch": arch, "num_classes": num_classes, "state_dict": state})


@pytest.fixture
def test_data(tmp_path, monkeypatch):
    """A test split of 100 images, 92 of them of class 3."""
    labels = np.array([3] * 92 + [0, 1, 2, 4, 5, 6, 7, 8])
    write_cifar(tmp_path / "data", per_batch=10, test_labels=np.random.default_rng(1).permutation(labels))
    monkeypatch.setenv("CONVLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")
    return labels


def run_check(data, seed=0):
    return check_milestone.check({"milestone.pt": data}, np.random.default_rng(seed), Limits(), NAMES)


def test_each_perturbed_image_is_its_original_flipped_or_shifted_by_at_most_2_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(40, 3, 32, 32)).astype(np.uint8)   # no zeros: a shift's fill shows
    out = check_milestone.perturb(images, np.random.default_rng(5))
    assert out.shape == images.shape and out.dtype == np.uint8
    seen = set()
    for image, got in zip(images, out):
        matches = []
        for flip, dy, dx in itertools.product((False, True), range(-2, 3), range(-2, 3)):
            source = image[..., ::-1] if flip else image
            want = np.zeros_like(source)
            want[:, max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)] = \
                source[:, max(-dy, 0):32 - max(dy, 0), max(-dx, 0):32 - max(dx, 0)]
            if np.array_equal(got, want):
                matches.append((flip, dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 20 and {flip for flip, _, _ in seen} == {False, True}   # the draws vary


def test_the_sample_is_stratified_by_class_and_drawn_per_submission():
    labels = np.repeat(np.arange(10), 1000)
    a = check_milestone.stratified_sample(labels, 4000, np.random.default_rng(1))
    b = check_milestone.stratified_sample(labels, 4000, np.random.default_rng(2))
    assert len(np.unique(a)) == 4000 and np.array_equal(np.bincount(labels[a]), [400] * 10)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, check_milestone.stratified_sample(labels, 4000, np.random.default_rng(1)))
    uneven = np.array([0] * 50 + [1] * 30 + [2] * 20)
    assert np.array_equal(np.bincount(uneven[check_milestone.stratified_sample(uneven, 10, np.random.default_rng(0))]),
                          [5, 3, 2])
    assert np.array_equal(check_milestone.stratified_sample(uneven, None, None), np.arange(100))


# BatchNorms folded: resnet20's stem, 9 blocks x 2 and 2 projections; preact_resnet18's bn2 of each of its 8
# blocks (bn1 and the head's follow no conv); resnet50's stem, 16 blocks x 3 and 4 projections.
@pytest.mark.parametrize("arch, stem, folded", [("resnet20", "cifar", 21), ("preact_resnet18", "cifar", 8),
                                                ("resnet50", "imagenet", 53)])
def test_the_evaluated_network_with_its_batchnorms_folded_gives_the_references_logits(arch, stem, folded):
    # The milestone's child folds each BatchNorm into the conv before it (one pass fewer over each activation).
    spec = ref.arch(arch, stem=stem)
    rng = np.random.default_rng(0)
    params = {}
    for key, shape in ref.state_dict_shapes(spec).items():
        if key.endswith("num_batches_tracked"):
            params[key] = torch.tensor(0)
        elif key.endswith("running_var") or (key.endswith("weight") and len(shape) == 1):
            params[key] = torch.from_numpy(rng.uniform(0.5, 1.5, shape))
        else:
            params[key] = torch.from_numpy(0.1 * rng.standard_normal(shape))
    x = torch.from_numpy(rng.standard_normal((2, 3, 64, 64)))
    folded_params = ref.fold_batchnorm(dict(params), spec)
    assert len(folded_params.folded) == folded
    assert torch.allclose(ref.resnet_forward(folded_params, spec, x), ref.resnet_forward(params, spec, x),
                          rtol=1e-10, atol=1e-12)


def test_the_score_is_linear_between_the_thresholds():
    assert points.MILESTONE_ZERO_AT < points.MILESTONE_FULL_AT
    middle = (points.MILESTONE_ZERO_AT + points.MILESTONE_FULL_AT) / 2
    assert [check_milestone.score(a) for a in (0, points.MILESTONE_ZERO_AT, middle, points.MILESTONE_FULL_AT, 100)] \
        == [0, 0, 0.5, 1, 1]


@pytest.mark.parametrize("arch", ["resnet20", "resnet18"])
def test_a_checkpoint_of_known_accuracy_scores_by_the_thresholds(test_data, arch):
    outcomes = run_check(checkpoint(constant_state(arch), arch=arch))
    assert outcomes[check_milestone.CHECK_TEST].fraction == 1
    accuracy = outcomes[check_milestone.ACCURACY_TEST]
    assert accuracy.leaderboard == {"accuracy": 92.0, "architecture": arch}
    assert accuracy.fraction == 1
    assert accuracy.notes[0].startswith(f"{arch}: accuracy 92.00 % on all 100 test images")


def test_partial_credit_and_the_leaderboard_in_results(test_data, tmp_path):
    labels = np.array([3] * 75 + [0] * 25)
    write_cifar(tmp_path / "data", per_batch=10, test_labels=labels)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "milestone.pt").write_bytes(checkpoint(constant_state()))
    tests, extra = grade(tmp_path / "sub", parts=["milestone"], log=lambda message: None)
    assert [(t.number, t.score) for t in tests] == [("5.1", 3), ("5.2", 12 * check_milestone.score(75.0))]
    assert extra["leaderboard"] == [{"name": "accuracy", "value": 75.0}, {"name": "architecture", "value": "resnet20"}]


def _renamed(state, prefix):
    return {prefix + k: v for k, v in state.items()}


def _with(state, key, value):
    return {**state, key: value}


BAD = {
    "random bytes": (lambda s: os.urandom(5000), "milestone.pt could not be read: it is not a file torch.save wrote "
                                                 "(or it was damaged on the way)"),
    "not a dict": (lambda s: _saved([1, 2, 3]), "it is not a dict with a 'state_dict'"),
    "unknown arch": (lambda s: checkpoint(s, arch="vgg16"), "names the architecture 'vgg16'; it must be one of "
                                                            "resnet20, resnet32, resnet56, resnet18, preact_resnet18"),
    "an arch outside the milestone's": (lambda s: checkpoint(s, arch="resnet50"), "names the architecture 'resnet50'"),
    "100 classes": (lambda s: checkpoint(s, num_classes=100), "says num_classes is 100; CIFAR-10 has 10"),
    "missing key": (lambda s: checkpoint({k: v for k, v in s.items() if k != "fc.bias"}),
                    "its state_dict lacks fc.bias for resnet20"),
    "torch.compile prefix": (lambda s: checkpoint(_renamed(s, "_orig_mod.")),
                             f"lacks conv1.weight (and {len(constant_state()) - 1} more) for resnet20: save "
                             "model.state_dict() of the model "
                             "resnet.resnet20() built (a torch.compile'd model adds '_orig_mod.'"),
    "extra key": (lambda s: checkpoint(_with(s, "fc2.weight", torch.zeros(3))),
                  "has an unexpected entry fc2.weight for resnet20"),
    "wrong shape": (lambda s: checkpoint(_with(s, "conv1.weight", torch.zeros(16, 3, 5, 5))),
                    "conv1.weight has shape (16, 3, 5, 5), but resnet20 needs (16, 3, 3, 3)"),
    "integer weights": (lambda s: checkpoint(_with(s, "fc.weight", torch.zeros(10, 64, dtype=torch.int64))),
                        "fc.weight holds int64 values; the weights must be floating point"),
    "NaN weights": (lambda s: checkpoint(_with(s, "layer2.0.bn1.running_var", torch.full((32,), float("nan")))),
                    "32 values are NaN or infinite (in layer2.0.bn1.running_var): the training diverged"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_checkpoint_scores_zero_with_a_clear_message(test_data, case):
    make, message = BAD[case]
    outcomes = run_check(make(constant_state()))
    loads, accuracy = outcomes[check_milestone.CHECK_TEST], outcomes[check_milestone.ACCURACY_TEST]
    assert loads.fraction == 0 and accuracy.fraction == 0
    assert message in loads.cases[0].message, loads.cases[0].message
    assert accuracy.blocker == "not evaluated: milestone.pt did not load (test 5.1 says why)"


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_that_would_run_code_is_refused_not_run(test_data):
    target = f"/tmp/convlab-pwned-{uuid.uuid4().hex}"   # /tmp: the sandbox user could write there, if it ran
    outcomes = run_check(_saved({"arch": "resnet20", "num_classes": 10, "state_dict": {"x": _Exploit(target)}}))
    assert outcomes[check_milestone.CHECK_TEST].cases[0].message == (
        "milestone.pt could not be read: it holds a Python object (posix.system) that is not a tensor, a number "
        "or a plain container: save only the dict the contract shows, of tensors from model.state_dict()")
    assert not os.path.exists(target)


def test_an_oversized_checkpoint_is_not_read_and_says_why(tmp_path):
    (tmp_path / "milestone.pt").write_bytes(b"\0" * ((100 << 20) + 1))
    tests, _ = grade(tmp_path, parts=["milestone"], log=lambda message: None)
    assert {t.score for t in tests} == {0}
    assert tests[0].output == "milestone.pt is 100.0 MB, over the 100 MB limit: not graded: no points for this part"


def test_missing_test_data_is_the_instructors_error_and_the_rest_stands(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_DATA", str(tmp_path / "empty"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "milestone.pt").write_bytes(checkpoint(constant_state()))
    shutil.copy(REPO / "solutions/cnn/quiz.py", tmp_path / "sub")
    tests, _ = grade(tmp_path / "sub", parts=["milestone", "quiz"], log=lambda message: None)
    by_number = {t.number: t for t in tests}
    assert by_number["5.1"].score == 0 and by_number["5.2"].score == 0
    assert by_number["5.1"].output.startswith("the grading machine has no CIFAR-10 test set, so the milestone could "
                                              "not be graded: the instructor's setup, not your file; tell your TA")
    assert sum(t.score for t in tests if t.number.startswith("4.")) == 10


def test_an_outcome_share_overrides_the_cases():
    assert Outcome(share=0.25).fraction == 0.25
    assert Outcome(share=0.25, blocker="no").fraction == 0


def _container_grade(memory_mb, submission, data):
    """(score, maximum, leaderboard) of a whole grade in a memory cgroup of ``memory_mb``."""
    stdout = in_container(memory_mb, f"""
        import json
        from grader.grade import grade
        tests, extra = grade({str(submission)!r}, log=lambda message: None)
        print(json.dumps([sum(t.score for t in tests), sum(t.max_score for t in tests), extra.get("leaderboard")]))
        """, env=data_env(data))
    return tuple(json.loads(stdout.splitlines()[-1]))


# Gradescope's default container is 768 MB; the grade fits in 512 (scripts/benchmark.py --milestone measures the
# smallest): the grading process holds no torch, and one torch child runs at a time.
@needs_cgroup
def test_the_solutions_and_their_trained_checkpoint_score_full_marks_in_a_512_mb_container(full_submission, trained):
    assert _container_grade(512, full_submission, trained.data) == (
        100, 100, [{"name": "accuracy", "value": 100.0}, {"name": "architecture", "value": "resnet20"}])


@needs_cgroup
def test_a_full_submission_with_a_resnet18_checkpoint_keeps_every_point_in_a_512_mb_container(tmp_path):
    # resnet18's checkpoint (45 MB) is the largest the milestone takes, and its evaluation the largest child.
    write_cifar(tmp_path / "data", per_batch=10, test_labels=np.array([3] * 92 + [0, 1, 2, 4, 5, 6, 7, 8]))
    submission = tmp_path / "submission"
    submission.mkdir()
    for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
        shutil.copy(REPO / "solutions/cnn" / name, submission)
    (submission / "milestone.pt").write_bytes(checkpoint(constant_state("resnet18"), arch="resnet18"))
    os.chmod(tmp_path, 0o755)
    # 92 % accuracy: full credit, as unconstrained
    assert _container_grade(512, submission, tmp_path / "data") == (
        100, 100, [{"name": "accuracy", "value": 92.0}, {"name": "architecture", "value": "resnet18"}])
