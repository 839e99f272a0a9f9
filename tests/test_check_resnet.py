"""grader/cnn/check_resnet.py: the reference resnet.py scores full marks, the stub zero without crashing, and
realistic slips lose the tests they touch."""
import numpy as np

from grader import paths
from grader.cnn import check_resnet as cr
from grader.cnn.points import PARTS
from grader.sandbox import Limits

LIMITS = Limits()
FILE, TESTS = PARTS["resnet"]
NAMES = [name for _, name, _ in TESTS]
SOLUTION = (paths.solutions_dir("cnn") / FILE).read_text()
BASIC, BOTTLENECK, PREACT, NETWORKS, INIT = NAMES


def variant(old, new):
    assert SOLUTION.count(old) == 1, f"{old!r} appears {SOLUTION.count(old)} times in the solution, expected once"
    return SOLUTION.replace(old, new)


def scores(source, seed=0):
    outcomes = cr.check({FILE: source.encode()}, np.random.default_rng(seed), LIMITS, NAMES)
    return {name: outcomes[name].fraction for name in NAMES}, outcomes


def test_relu_before_the_add_loses_basicblock():
    got, outcomes = scores(variant("        return F.relu(out + shortcut)\n        # END SOLUTION\n\n\nclass Bottleneck",
                                   "        return F.relu(out) + shortcut\n        # END SOLUTION\n\n\nclass Bottleneck"))
    assert got[BASIC] < 1 and got[BOTTLENECK] == got[PREACT] == got[INIT] == 1, (got, outcomes[BASIC])


def test_kaiming_fan_in_loses_only_init():
    got, outcomes = scores(variant('kaiming_normal_(m.weight, mode="fan_out"', 'kaiming_normal_(m.weight, mode="fan_in"'))
    assert got[INIT] < 1 and all(got[n] == 1 for n in NAMES if n != INIT), got
    assert any("kaiming" in c.message and not c.ok for c in outcomes[INIT].cases)


def test_preact_shortcut_on_raw_input_loses_preactblock():
    got, outcomes = scores(variant("shortcut = x if self.downsample is None else self.downsample(a)",
                                   "shortcut = x if self.downsample is None else self.downsample(x)"))
    assert got[PREACT] < 1 and got[BASIC] == got[BOTTLENECK] == got[INIT] == 1, (got, outcomes[PREACT])


def test_torchvision_import_zeroes_the_part():
    outcomes = cr.check({FILE: ("import torchvision\n" + SOLUTION).encode()}, np.random.default_rng(0), LIMITS, NAMES)
    assert all(o.fraction == 0 and "torchvision" in o.blocker for o in outcomes.values())


def test_every_factory_and_both_stems_are_checked():
    factories = {"resnet20", "resnet32", "resnet56", "resnet18", "resnet34", "resnet50", "preact_resnet18"}
    assert {name for name, _, _ in cr.COUNTED} == factories
    assert {kwargs.get("stem", "cifar") for _, kwargs, _ in cr.COUNTED} == {"cifar", "imagenet"}


def test_every_draw_has_each_kind_of_block_shortcut():
    # Identity and projection at stride 1 and 2 where a block kind has them; a bottleneck whose width changes at
    # stride 1 (the in-channels are not 4 x width) needs a projection that a stride-only test would miss.
    for seed in range(200):
        for kind in ("basic", "bottleneck", "preact"):
            labels = [label for label, *_ in cr._block_configs(np.random.default_rng(seed), kind)]
            for wanted in ("stride 1 (identity)", "stride 1 (projection)", "stride 2 (projection)"):
                assert any(label.endswith(wanted) for label in labels), (seed, kind, labels)


def test_a_bottleneck_projecting_only_at_stride_2_loses_points():
    anchor = "self.bn3 = nn.BatchNorm2d(out_channels)\n        self.downsample = None\n        if stride != 1"
    source = variant(anchor + " or in_channels != out_channels:\n", anchor + ":\n")
    got, outcomes = scores(source)   # the draw always holds the case (the test above)
    assert got[BOTTLENECK] < 1 and all(got[n] == 1 for n in (BASIC, PREACT, INIT)), (got, outcomes[BOTTLENECK])
