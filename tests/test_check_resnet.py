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
