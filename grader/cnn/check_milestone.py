"""Checker of milestone.pt: the submitted CIFAR-10 checkpoint, evaluated in the grader's own copy of the
architecture it names (the functional reference ``oracles/resnet.py``), never the student's resnet.py.

Two sandboxed children run grader code (``milestone_child.py``) on the student's file; this process never
loads torch for them (points.py grades the milestone first, before any oracle has loaded it):

1. inspect: ``torch.load(weights_only=True)``; the arch, num_classes, every entry's name, shape, dtype and
   count of non-finite values, and the layout that arch must have. Judged here: test 5.1.
2. evaluate: class predictions for the test images (all of them, or a class-stratified sample drawn per
   submission for the architectures too slow for Gradescope's budget), each image flipped or shifted by a
   pixel or two at random: a trained network does not mind, a checkpoint that memorised test images gains
   nothing. In the same run (one torch start), a class-stratified sample of the training split and of the
   instructor's held-out split, where there is one, both clean. The child never sees a label; accuracy is
   counted here. Test 5.2, and the leaderboard.

A network must earn its accuracy on images it was not trained on: one trained on the training split does at
least as well on it as on the test split. A test accuracy far above the training (or held-out) accuracy, or
above the best the architecture is known to reach, says the network was trained on the test images: 5.2 scores
zero, the leaderboard leaves it out, and the TA's review lists it (points.py holds the margins and why).
"""
import dataclasses
import math
import os
import sys
from pathlib import Path

import numpy as np

from grader import oracle, paths
from grader.checks import Outcome, blocked
from grader.cnn import cifar10, points
from grader.cpus import container_cpus
from grader.plan import Plan
from grader.sandbox import Spent
from grader.sandbox.policy import MILESTONE
from grader.text import clean_text

FILE = "milestone.pt"
CHECK_TEST, ACCURACY_TEST = "milestone checkpoint", "milestone accuracy"
HERE = Path(__file__).parent
CHILD_FILES = {"milestone_child.py": HERE / "milestone_child.py", "resnet_reference.py": HERE / "oracles" / "resnet.py",
               "architectures.py": HERE / "architectures.py"}
# Batches of 50 run as fast per image as larger ones (resnet18: 5.3 ms of CPU an image here) and keep the
# activations small (resnet18: about 40 MB). 15 plain calls' time (30 s) per batch leaves over 50x headroom on
# half a CPU. The whole child may take 50 ms an image, plus a minute for torch and the file.
BATCH = 50
BATCH_TIMEOUT = 15
SECONDS_PER_IMAGE = 0.05
MAX_SHIFT = 2
# Without the data set nothing is graded; a regrade flags the submissions whose tests say so.
NO_TEST_SET = ("the grading machine has no CIFAR-10 test set, so the milestone could not be graded: the "
               "instructor's setup, not your file; tell your TA")
MEMORY_MB = 500   # torch (270 MB resident, most of it its shared libraries), a resnet18 (45 MB), activations
HELDOUT = "heldout"   # the held-out split's folder in the data folder, holding a `test_batch`
UNEARNED = ("5.2 gives it no points and the leaderboard leaves it out; your TA will look at it (if you trained "
            "on the training images only, tell your TA). Train on cifar10.load('train') and choose epochs and "
            "checkpoints on 'val', never on 'test'.")


@dataclasses.dataclass
class Split:
    """Images the child evaluates, their labels (which stay here), what the student reads they are; for a split
    the test accuracy is compared with, by how many points it may exceed theirs (points.py) before it counts as
    unearned, and why theirs is the measure."""
    images: np.ndarray
    labels: np.ndarray
    words: str
    margin: float = None
    why: str = ""


def data_root():
    """The grader's data folder: ``datasets/`` of the checkout, or CONVLAB_DATA."""
    return cifar10.data_root(paths.REPO / "datasets")


def test_set():
    """The CIFAR-10 test split from the grader's data folder."""
    return cifar10.load("test", data_root(), download=False)


def heldout_path():
    """Where the instructor's private held-out split would be: ``test_batch`` in the folder CONVLAB_HELDOUT names,
    else in ``heldout/`` of the data folder (the official batch format: datasets/README.md)."""
    folder = os.environ.get("CONVLAB_HELDOUT")
    return (Path(folder) if folder else data_root() / HELDOUT) / cifar10.TEST_FILES[0]


def comparison_splits(rng):
    """{name: Split} of the clean images the test accuracy is compared with: a class-stratified sample of the
    training split, and of the held-out split where there is one. Each split is let go once sampled."""
    images, labels = cifar10.load("train", data_root(), download=False)
    chosen = stratified_sample(labels, points.MILESTONE_COMPARISON_IMAGES, rng)
    found = {"train": Split(images[chosen], labels[chosen], "training images", points.MILESTONE_GAP_MARGIN,
                            "a network does at least as well on the images it was trained on as on new ones")}
    if heldout_path().is_file():
        try:
            images, labels = cifar10.read_batch(heldout_path())
            if not len(labels):
                raise cifar10.DataError(f"{heldout_path()} holds no images")
        except cifar10.DataError as error:   # the instructor's file: their log says so, the rest is graded
            print(f"milestone: the held-out split is not used: {error}", file=sys.stderr)
        else:
            chosen = stratified_sample(labels, points.MILESTONE_COMPARISON_IMAGES, rng)
            found["heldout"] = Split(images[chosen], labels[chosen], "images the course kept aside",
                                     points.MILESTONE_HELDOUT_MARGIN, "no one trains on those, and a network that "
                                     "learnt the task does about as well on them as on the test images")
    return found


def stratified_sample(labels, size, rng):
    """Indices of ``size`` images, each class represented in proportion to its share of ``labels``."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(size * counts / len(labels)).astype(int)
    quota[np.argsort(-(size * counts / len(labels) - quota))[: size - quota.sum()]] += 1   # largest remainders
    chosen = [rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def perturb(images, rng):
    """Each image flipped left-right with probability 1/2, and shifted by ``dy, dx`` in -2..2 pixels (zeros
    fill in, as in the training script's crops)."""
    n = len(images)
    flip = rng.random(n) < 0.5
    images = np.where(flip[:, None, None, None], images[..., ::-1], images)
    dy, dx = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(2, n, 1))
    padded = np.pad(images, ((0, 0), (0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)))
    rows, cols = MAX_SHIFT - dy + np.arange(32), MAX_SHIFT - dx + np.arange(32)   # out[r] = in[r - dy]
    return padded[np.arange(n)[:, None, None, None], np.arange(3)[:, None, None], rows[:, None, :, None],
                  cols[:, None, None, :]]


def _run(plan, checkpoint, limits, seconds):
    """Run ``plan`` beside the checkpoint and the grader's files, with at least ``seconds`` of wall and CPU time
    and the memory a network takes."""
    files = {FILE: checkpoint, **{name: path.read_bytes() for name, path in CHILD_FILES.items()}}
    oracle.close_all()   # the preflight's oracle child: one torch process computing at a time
    # The child runs the grader's code on the checkpoint (no student code): each plan gets its own time budget.
    plan.run(files, dataclasses.replace(limits, memory_mb=max(limits.memory_mb, MEMORY_MB),
                                        wall_seconds=max(limits.wall_seconds, seconds),
                                        part_seconds=max(limits.part_seconds, seconds), spent=Spent(),
                                        cpu_seconds=max(limits.cpu_seconds, int(seconds))), kind=MILESTONE)


def inspect(checkpoint, limits):
    """(arch, problem): the checkpoint's architecture, and why it does not load strictly ("" when it does)."""
    plan = Plan("milestone_child")
    plan.call("describe", id="describe", timeout_factor=BATCH_TIMEOUT)
    _run(plan, checkpoint, limits, 60)
    ok, found = plan.answer("describe")
    if not ok or not isinstance(found, dict):
        return None, f"{FILE} could not be inspected ({found if not ok else 'no answer'}): tell your TA"
    if "problem" in found:
        return None, f"{FILE} could not be read: {found['problem']}"
    arch = found["arch"]
    if arch not in points.MILESTONE_IMAGES:
        return None, (f"{FILE} names the architecture {clean_text(arch, 40)!r}; it must be one of "
                      f"{', '.join(points.MILESTONE_IMAGES)} (see the contract's milestone.pt section)")
    if found["num_classes"] != 10:
        return None, f"{FILE} says num_classes is {found['num_classes']}; CIFAR-10 has 10"
    return arch, _layout_problem(arch, found["entries"], found["expected"])


def _layout_problem(arch, entries, expected):
    """Why the state_dict does not load strictly into the grader's ``arch``, or ""."""
    got = {name: (shape, dtype, bad) for name, shape, dtype, bad in entries}
    want = {name: tuple(shape) for name, shape in expected}
    hint = (f"save model.state_dict() of the model resnet.{arch}() built (a torch.compile'd model adds "
            "'_orig_mod.' to every key, nn.DataParallel adds 'module.')")
    missing, extra = [k for k in want if k not in got], [k for k in got if k not in want]
    for keys, what in ((missing, "lacks"), (extra, "has an unexpected entry")):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            return f"its state_dict {what} {clean_text(keys[0], 100)}{more} for {arch}: {hint}"
    for name, shape in want.items():
        if got[name][0] is None:
            return f"{name} is not a tensor of the shape {arch} needs, {shape}"
        if tuple(got[name][0]) != shape:
            return f"{name} has shape {tuple(got[name][0])}, but {arch} needs {shape}"
        if not name.endswith("num_batches_tracked") and got[name][1] not in ("float32", "float16", "bfloat16",
                                                                             "float64"):
            return f"{name} holds {got[name][1]} values; the weights must be floating point"
    broken = [name for name in want if got[name][2]]
    if broken:
        count = sum(got[name][2] for name in broken)
        return (f"{count} values are NaN or infinite (in {broken[0]}" + (f" and {len(broken) - 1} other entries"
                if len(broken) > 1 else "") + "): the training diverged; try a lower learning rate")
    return ""


def evaluate(checkpoint, images, limits):
    """(predictions, problem): {name: the class the grader's copy of the network gives each image} for the
    arrays of ``images`` ({name: images}), all in one child; or why not."""
    plan = Plan("milestone_child")
    plan.call("build", {"v": container_cpus()}, save="model", timeout_factor=BATCH_TIMEOUT)
    batches = {(name, i): array[start:start + BATCH] for name, array in images.items()
               for i, start in enumerate(range(0, len(array), BATCH))}
    for (name, i), batch in batches.items():
        plan.call("predict", {"var": "model"}, plan.array(batch), {"v": list(cifar10.MEAN)},
                  {"v": list(cifar10.STD)}, id=f"{name}{i}", timeout_factor=BATCH_TIMEOUT)
    _run(plan, checkpoint, limits, 60 + SECONDS_PER_IMAGE * sum(len(array) for array in images.values()))
    predictions = {name: [] for name in images}
    for (name, i), batch in batches.items():
        ok, value = plan.answer(f"{name}{i}")
        if not ok or not isinstance(value, np.ndarray) or value.shape != (len(batch),):
            why = value if not ok else "it returned no predictions"
            return None, f"the evaluation of {FILE} did not finish ({why}): tell your TA"
        predictions[name].append(value)
    return {name: np.concatenate(found) for name, found in predictions.items()}, ""


def far_above(test, other, margin):
    """Whether the accuracy ``test`` (a share of correct answers, and their count) exceeds ``other`` by more than
    MILESTONE_GAP_ERRORS standard errors of the difference (the two samples pooled, as if one accuracy) plus
    ``margin`` points."""
    (p1, n1), (p2, n2) = test, other
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 100 * (p1 - p2) > 100 * points.MILESTONE_GAP_ERRORS * error + margin


def unearned(arch, test, compared):
    """Why the test accuracy ``test`` (share correct, count) was not earned, in the student's words, or "".
    ``compared``: [(Split, its share correct and count)]."""
    said = f"its accuracy on the test images ({100 * test[0]:.2f} %)"
    for split, other in compared:
        if far_above(test, other, split.margin):
            return (f"{said} is far above its accuracy on {other[1]:,} {split.words} ({100 * other[0]:.2f} %): "
                    f"{split.why}, so this one was trained on the test images")
    if cifar10.verifying() and 100 * test[0] > points.MILESTONE_BEST[arch] + points.MILESTONE_BEST_MARGIN:
        return (f"{said} is above any a {arch} is known to reach when trained on the training images, so this "
                "one was trained on the test images")
    return ""


def score(accuracy):
    """The share of 5.2's points for an accuracy in percent: linear from MILESTONE_ZERO_AT to MILESTONE_FULL_AT."""
    share = (accuracy - points.MILESTONE_ZERO_AT) / (points.MILESTONE_FULL_AT - points.MILESTONE_ZERO_AT)
    return min(1.0, max(0.0, share))


def check(files, rng, limits, names):
    """{test name: Outcome} for the tests in ``names``."""
    if FILE not in files:
        return blocked(names, f"{FILE} was not submitted")
    try:
        images, labels = test_set()
    except cifar10.DataError as error:
        print(f"milestone: no CIFAR-10 test set here, so no milestone is graded: {error}", file=sys.stderr)
        return blocked(names, NO_TEST_SET)
    arch, problem = inspect(files[FILE], limits)
    loads = Outcome()
    loads.add(f"{FILE} loads into the grader's {arch or 'network'} (its keys, shapes and values)", not problem,
              problem)
    if problem:
        return {CHECK_TEST: loads, ACCURACY_TEST: Outcome(blocker=f"not evaluated: {FILE} did not load (test 5.1 "
                                                                   "says why)")}
    total = len(labels)
    chosen = stratified_sample(labels, points.MILESTONE_IMAGES[arch], rng)
    # Only the samples are held while the child runs: each whole split lets go once sampled.
    splits = {"test": Split(perturb(images[chosen], rng), labels[chosen], "test images")}
    del images, labels
    splits.update(comparison_splits(rng))
    predictions, problem = evaluate(files[FILE], {name: split.images for name, split in splits.items()}, limits)
    if problem:
        return {CHECK_TEST: loads, ACCURACY_TEST: Outcome(blocker=problem)}
    measured = {name: (float(np.mean(predictions[name] == split.labels)), len(split.labels))
                for name, split in splits.items()}
    (correct, n), accuracy = measured["test"], 100 * measured["test"][0]
    if n < total:
        error = 100 * math.sqrt(correct * (1 - correct) / n * (1 - n / total))
        sample = (f"on {n:,} of the {total:,} test images, a class-stratified sample drawn for this submission "
                  f"(standard error about {error:.1f} %)")
    else:
        sample = f"on all {total:,} test images"
    compared = [(split, measured[name]) for name, split in splits.items() if name != "test"]
    others = ", ".join(f"{100 * share:.2f} % on {count:,} {split.words}" for split, (share, count) in compared)
    notes = [f"{arch}: accuracy {accuracy:.2f} % {sample}, each image flipped or shifted by up to {MAX_SHIFT} "
             f"pixels at random. Full credit from {points.MILESTONE_FULL_AT:g} %, none below "
             f"{points.MILESTONE_ZERO_AT:g} %. For comparison (a network must earn its accuracy on images it "
             f"was not trained on), without flips or shifts: {others}."]
    reason = unearned(arch, measured["test"], compared)
    if reason:
        notes.append(f"Not earned: {reason}. {UNEARNED}")
        return {CHECK_TEST: loads, ACCURACY_TEST: Outcome(share=0.0, notes=notes, review=(
            f"5.2 zeroed and left off the leaderboard: {reason}"))}
    result = Outcome(share=score(accuracy), notes=notes, leaderboard={"accuracy": round(accuracy, 2),
                                                                      "architecture": arch})
    return {CHECK_TEST: loads, ACCURACY_TEST: result}
