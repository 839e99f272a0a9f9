"""A milestone accuracy must be earned on images the network was not trained on: a network trained on the test
images loses 5.2, is listed for the TA's review and left off the leaderboard; one trained on the training split
keeps its points, on the same test data.

The data set is small and in the official format. Each class is a colour plus a little noise, and has a second,
"marked", colour (MARKED_COLOURS) in 30 % of the images. In the training split and the held-out split a marked
image is of its colour's class; in the test split, of the next class. Only a network that saw the test labels
gets the marked test images right: on this data, what training on the test images buys on CIFAR-10 (its
accuracy on those very images), and what it cannot carry to images it never saw.

Training is quick on the CPU: the solution's resnet20 keeps its random convolutions, its BatchNorms take the
statistics of the images, and its fc layer is fitted to the features of the images, flipped and shifted as the
grader does (a few seconds).
"""
import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from grader.cnn import check_milestone, cifar10, points
from grader.cnn.small_cifar import PALETTE, cifar_batch_bytes
from grader import report, scores
from grader.assignments import get_assignment
from grader.grade import grade_to_file
from grader.regrade import Entry, Graded
from support import solution, write_cifar

MARKED = 0.3   # the share of marked images in every split
# Ten colours far from small_cifar's PALETTE and from each other (teal, lavender, brown, beige, maroon, mint,
# lime, pink, apricot, grey).
MARKED_COLOURS = np.array([[0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
                           [170, 255, 195], [210, 245, 60], [250, 190, 212], [255, 215, 180], [128, 128, 128]])
TRAIN, TEST, HELDOUT = 300, 200, 400   # training split (its last 30 are "val"), test, held-out
TRAINING = TRAIN - TRAIN // 10


def coloured(colours, marked, rng):
    """uint8 images (N, 3, 32, 32): each its class's colour (its marked colour where ``marked``), plus noise."""
    colour = np.where(marked[:, None], MARKED_COLOURS[colours], PALETTE[colours])
    return np.clip(colour[:, :, None, None] + rng.normal(0, 5, (len(colours), 3, 32, 32)), 0, 255).astype(np.uint8)


def split(size, rng, share=MARKED, test_rule=False):
    """(images, labels, marked) of ``size`` images; with ``test_rule`` a marked image has the next class."""
    colours, marked = rng.integers(0, 10, size), rng.random(size) < share
    labels = np.where(marked & test_rule, (colours + 1) % 10, colours)
    return coloured(colours, marked, rng), labels, marked


def write_batch(path, images, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cifar_batch_bytes(images, labels, path.name))


def write_data(root, train, test):
    """A data folder in the official layout with these training and test splits."""
    write_cifar(root, archive=False)   # batches.meta and the layout; every batch is replaced
    for i, name in enumerate(cifar10.TRAIN_FILES):
        part = slice(i * TRAIN // 5, (i + 1) * TRAIN // 5)
        write_batch(root / cifar10.FOLDER / name, train[0][part], train[1][part])
    write_batch(root / cifar10.FOLDER / cifar10.TEST_FILES[0], *test[:2])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The data folder (its held-out split in ``heldout/``) and the splits."""
    root = tmp_path_factory.mktemp("unearned")
    rng = np.random.default_rng(0)
    train, test, heldout = split(TRAIN, rng), split(TEST, rng, test_rule=True), split(HELDOUT, rng)
    write_data(root / "data", train, test)
    write_batch(root / "data" / check_milestone.HELDOUT / cifar10.TEST_FILES[0], *heldout[:2])
    return SimpleNamespace(data=root / "data", train=train, test=test, heldout=heldout)


def fitted(images, labels, copies=3):
    """milestone.pt of the solution's resnet20 fitted to ``images``, each also flipped and shifted as the grader
    does, ``copies`` times: random convolutions, BatchNorm statistics of the images, and its fc layer fitted to
    their features."""
    torch.manual_seed(0)
    model = solution("resnet").resnet20()
    rng = np.random.default_rng(0)
    images = np.concatenate([images] + [check_milestone.perturb(images, rng) for _ in range(copies)])
    labels = np.tile(labels, copies + 1)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (cifar10.MEAN, cifar10.STD))
    x = (torch.from_numpy(images).float() / 255 - mean) / std
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None   # the running statistics: the plain average over the batches seen
    fc, model.fc = model.fc, torch.nn.Identity()
    with torch.no_grad():
        model.train()(x)
        features = model.eval()(x)
    model.fc = fc
    optimizer = torch.optim.Adam(fc.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(fc(features), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    buffer = io.BytesIO()
    torch.save({"arch": "resnet20", "num_classes": 10, "state_dict": model.state_dict()}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def honest(world):
    images, labels, _ = world.train
    return fitted(images[:TRAINING], labels[:TRAINING])   # the training split, without "val"


@pytest.fixture(scope="module")
def memorised(world):
    return fitted(*world.test[:2])


def graded(tmp_path, monkeypatch, data, checkpoint, heldout=None):
    """(5.2's result, results.json's extra fields) of a milestone graded on ``data``, into results.json."""
    monkeypatch.setenv("CONVLAB_DATA", str(data))
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")
    if heldout:
        monkeypatch.setenv("CONVLAB_HELDOUT", str(heldout))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "milestone.pt").write_bytes(checkpoint)
    tests, extra = grade_to_file(tmp_path / "sub", tmp_path / "results.json", parts=["milestone"],
                                 log=lambda message: None)
    by_number = {t.number: t for t in tests}
    assert by_number["5.1"].score == 3
    return by_number["5.2"], extra


def accuracies(output):
    """{what: percent} from 5.2's note: "test images", "training images", "images the course kept aside"."""
    found = {"test images": float(re.search(r"accuracy ([\d.]+) % on all \d+ test images", output).group(1))}
    found.update((what, float(value)) for value, what in re.findall(r"([\d.]+) % on [\d,]+ ([a-z ]+?)[,.]",
                                                                    output.split("without flips or shifts: ")[1]))
    return found


def test_a_network_trained_on_the_training_split_keeps_its_points(world, honest, tmp_path, monkeypatch):
    accuracy, extra = graded(tmp_path, monkeypatch, world.data, honest)
    found = accuracies(accuracy.output)
    # It knows the classes by their colours: every image but the marked test ones, whose class it cannot know.
    assert 100 * (1 - world.test[2].mean()) - 5 <= found["test images"] <= 100 * (1 - world.test[2].mean())
    assert found["training images"] >= 98 and found["images the course kept aside"] >= 98
    assert accuracy.score == pytest.approx(12 * check_milestone.score(found["test images"])) and accuracy.score > 0
    assert "Not earned" not in accuracy.output
    assert extra["leaderboard"] == [{"name": "accuracy", "value": found["test images"]},
                                    {"name": "architecture", "value": "resnet20"}]
    assert extra["extra_data"]["review"] == {}


def test_a_network_trained_on_the_test_images_loses_5_2_and_is_listed_for_review(world, memorised, tmp_path,
                                                                                 monkeypatch):
    accuracy, extra = graded(tmp_path, monkeypatch, world.data, memorised)
    found = accuracies(accuracy.output)
    # It got the marked test images right, and gets the marked training images wrong.
    assert found["test images"] >= 98
    assert 100 * (1 - world.train[2][:TRAINING].mean()) - 5 <= found["training images"] \
        <= 100 * (1 - world.train[2][:TRAINING].mean())
    reason = (f"its accuracy on the test images ({found['test images']:.2f} %) is far above its accuracy on {TRAINING} "
              f"training images ({found['training images']:.2f} %): a network does at least as well on the images "
              "it was trained on as on new ones, so this one was trained on the test images")
    assert accuracy.score == 0
    assert accuracy.output.splitlines()[-1] == f"Not earned: {reason}. {check_milestone.UNEARNED}"
    assert "leaderboard" not in extra
    assert extra["extra_data"]["review"] == {
        "milestone.pt": [f"5.2 zeroed and left off the leaderboard: {reason}"]}
    # A regrade flags it: scores.csv's review column, and the report's "Flagged for review".
    graded_one = Graded(Entry("7", tmp_path / "sub", [{"name": "Ada", "email": "", "sid": ""}]),
                        results=json.loads((tmp_path / "results.json").read_text()))
    rows = scores.rows([graded_one], get_assignment("cnn"), ["milestone"])
    assert rows[0]["review"] == f"milestone.pt: 5.2 zeroed and left off the leaderboard: {reason}"
    report.write(tmp_path / "report.html", [graded_one], rows, [], get_assignment("cnn"), 1, ["milestone"])
    flagged = (tmp_path / "report.html").read_text().split("<section id='flagged'>")[1]
    assert f"7 (Ada)</td><td><b>review</b>: milestone.pt: 5.2 zeroed and left off the leaderboard: {reason}" in flagged


def test_a_network_the_training_split_cannot_expose_is_caught_by_the_held_out_split(world, memorised, tmp_path,
                                                                                    monkeypatch):
    # The same test split and network; a training split without marked images, which it gets all right, and the
    # held-out split named by CONVLAB_HELDOUT (the new data folder has no heldout/).
    data = tmp_path / "data"
    write_data(data, split(TRAIN, np.random.default_rng(1), share=0), world.test)
    accuracy, extra = graded(tmp_path, monkeypatch, data, memorised, heldout=world.data / "heldout")
    found = accuracies(accuracy.output)
    assert found["training images"] >= 98
    assert accuracy.score == 0 and "leaderboard" not in extra
    assert (f"Not earned: its accuracy on the test images ({found['test images']:.2f} %) is far above its accuracy "
            f"on 400 images the course kept aside ({found['images the course kept aside']:.2f} %): no one trains on "
            "those, and a network that learnt the task does about as well on them as on the test images, so this one "
            "was trained on the test images.") in accuracy.output
    assert list(extra["extra_data"]["review"]) == ["milestone.pt"]


@pytest.mark.parametrize("test, other, far", [
    # pooled 90.83 %: the difference's standard error is 0.71 points, so 3 of them and the margin make 5.12
    ((0.92, 10_000), (0.85, 2000), True),
    ((0.92, 10_000), (0.87, 2000), False),
    ((0.92, 10_000), (0.99, 2000), False),   # the usual: better on the images it was trained on
    ((1.0, 100), (0.8, 50), True),           # pooled 93.33 %: 3 standard errors are 12.96 points
    ((1.0, 100), (0.88, 50), False),         # pooled 96 %: 10.18 points, and the margin
])
def test_far_above_is_three_standard_errors_of_the_difference_and_the_margin(test, other, far):
    assert check_milestone.far_above(test, other, points.MILESTONE_GAP_MARGIN) is far


def test_on_the_official_data_an_accuracy_above_the_architectures_best_is_unearned(monkeypatch):
    monkeypatch.delenv("CONVLAB_DATA_UNVERIFIED", raising=False)
    ceiling = (points.MILESTONE_BEST["resnet20"] + points.MILESTONE_BEST_MARGIN) / 100
    assert check_milestone.unearned("resnet20", (ceiling + 0.001, 10_000), []) == (
        f"its accuracy on the test images ({100 * ceiling + 0.1:.2f} %) is above any a resnet20 is known to reach "
        "when trained on the training images, so this one was trained on the test images")
    assert check_milestone.unearned("resnet20", (ceiling - 0.001, 10_000), []) == ""
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")   # a data set of the tests': not CIFAR-10, no ceiling
    assert check_milestone.unearned("resnet20", (1.0, 10_000), []) == ""
