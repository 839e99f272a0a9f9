"""grader/cnn/check_resnet.py: the reference resnet.py scores full marks, the stub zero without crashing, and
realistic slips lose the tests they touch."""
import numpy as np

from grader import paths
from grader.checks import failed_categories, to_result
from grader.cnn import behaviours
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


def test_every_draw_has_each_category_of_block_shape():
    # The same categories on every draw, in behaviours.RESNET's order; only the kept channels at stride 1 have
    # the identity shortcut (a bottleneck keeps them with in_channels = 4 x width).
    for seed in range(200):
        for kind in ("basic", "bottleneck", "preact"):
            configs = cr._block_configs(np.random.default_rng(seed), kind)
            assert [label.split(", ", 1)[1].rsplit(" (", 1)[0] for label, *_ in configs] \
                == [category for _, category, *_ in configs] == list(behaviours.RESNET["shapes"]), (seed, kind)
            assert [label.endswith("(identity)") for label, *_ in configs] == [True] + [False] * 4, configs
            expansion = 4 if kind == "bottleneck" else 1
            kept, widened, narrowed, *_ = configs
            assert kept[4] is None and kept[2] == kept[3] * expansion, kept
            assert widened[2] < widened[3] * expansion and narrowed[2] > narrowed[3] * expansion, configs


def test_every_documented_resnet_behaviour_is_a_case_passed_by_the_solution():
    got, outcomes = scores(SOLUTION)
    labels = {case.label: case.ok for name in NAMES for case in outcomes[name].cases}
    wanted = [f"{block} " for block in behaviours.RESNET["blocks"]]
    wanted += [f"ResNet({block}, [1, 1], widths=" for block in behaviours.RESNET["blocks"]]
    wanted += [category for category in behaviours.RESNET["shapes"]]
    wanted += [f"ResNet: {label}" for label in behaviours.RESNET["errors"]["ResNet"].values()]
    wanted += list(behaviours.RESNET["promises"]["ResNet"].values())
    wanted += [kw.left_out() for keywords in behaviours.RESNET["keywords"].values() for kw in keywords
               if kw.name != "zero_init_residual"]
    for text in wanted:
        assert any(text in label for label in labels), (text, sorted(labels))
    for block in behaviours.RESNET["blocks"]:   # every block with every stem
        for stem in behaviours.RESNET["stems"]:
            assert any(f"ResNet({block}, [1, 1]" in label and ("stem='imagenet'" in label) == (stem == "imagenet")
                       for label in labels) or (block, stem) == ("BasicBlock", "cifar"), (block, stem)
    assert all(labels.values()) and all(value == 1 for value in got.values()), got


def test_a_preact_block_narrowing_without_projection_loses_only_its_narrowed_cases():
    # cosmic-ray's survivor before the narrowed category: `!=` made `<` projects only where channels widen.
    got, outcomes = scores(variant("        if stride != 1 or in_channels != out_channels:\n"
                                   "            self.downsample = nn.Conv2d(",
                                   "        if stride != 1 or in_channels < out_channels:\n"
                                   "            self.downsample = nn.Conv2d("))
    lost = failures(outcomes[PREACT])
    assert lost and all("channels narrowed" in label for label in lost), lost
    assert got[BASIC] == got[BOTTLENECK] == got[NETWORKS] == got[INIT] == 1, got
    # A regrade's report counts the block's cases under its layout's shapes and what each checks, without the
    # channel counts drawn into the labels.
    found = failed_categories(outcomes[PREACT])
    assert set(found) == {*behaviours.RESNET["shapes"], "parameter names and shapes", "eval mode",
                          "train mode (output and running statistics)",
                          "training step (loss.backward(): gradients, input left unchanged)"}, found
    assert found["stride 1, channels narrowed"] == [4, 4] and found["stride 2, channels widened"] == [0, 4], found


def test_a_resnet_accepting_any_stem_loses_the_documented_error():
    got, outcomes = scores(variant('        if stem not in ("cifar", "imagenet"):\n            raise ValueError',
                                   '        if stem is None:\n            raise ValueError'))
    assert failures(outcomes[NETWORKS]) == {
        "ResNet: an unknown stem raises ValueError": "returned a value; expected it to raise ValueError"}
    assert got[NETWORKS] < 1 and all(got[n] == 1 for n in (BASIC, BOTTLENECK, PREACT, INIT)), got


def test_re_initialising_fc_loses_only_its_init_case():
    got, outcomes = scores(variant("            if isinstance(m, nn.Conv2d):\n",
                                   "            if isinstance(m, (nn.Conv2d, nn.Linear)):\n"))
    lost = failures(outcomes[INIT])
    assert list(lost) == ["resnet20 fc keeps PyTorch's default initialisation (uniform within 1/sqrt(in_features))"]
    assert "leave fc as nn.Linear initialises it" in next(iter(lost.values()))
    assert all(got[n] == 1 for n in NAMES if n != INIT), got


def test_a_network_losing_its_default_num_classes_loses_the_cases_that_leave_it_out():
    got, outcomes = scores(variant("    def __init__(self, block, layers, num_classes=10,",
                                   "    def __init__(self, block, layers, num_classes=100,"))
    # The factories pass num_classes on: only the network built without it fails, in all four of its cases.
    lost = failures(outcomes[NETWORKS])
    assert len(lost) == 4 and all(label.startswith("ResNet(PreActBlock, [1, 1], widths=(8, 16), stem='imagenet') "
                                                   "forward, num_classes left out (default 10)") for label in lost), lost
    assert all(got[n] == 1 for n in NAMES if n != NETWORKS), got


def test_a_bottleneck_projecting_only_at_stride_2_loses_points():
    anchor = "self.bn3 = nn.BatchNorm2d(out_channels)\n        self.downsample = None\n        if stride != 1"
    source = variant(anchor + " or in_channels != out_channels:\n", anchor + ":\n")
    got, outcomes = scores(source)   # the draw always holds the case (the test above)
    assert all(got[n] == 1 for n in (BASIC, PREACT, INIT)), (got, outcomes[BOTTLENECK])
    # Its forward raises where the channels change at stride 1: those two shapes lose their four cases, 2 x (1 + 1 +
    # 1 + 2) of 25, and nothing caps the rest, as the forward's own cases already say what fails.
    assert abs(got[BOTTLENECK] - 15 / 25) < 1e-12 and outcomes[BOTTLENECK].cap is None, got


BASIC_RETURN = "        return F.relu(out + shortcut)\n        # END SOLUTION\n\n\nclass Bottleneck"


def failures(outcome):
    return {case.label: case.message for case in outcome.cases if not case.ok}


def test_adding_into_the_identity_shortcut_fails_backward_in_the_students_words():
    # `shortcut += out` writes into x itself where the shortcut is the identity, and conv1 saved x for its
    # backward: every forward check passes, loss.backward() raises.
    got, outcomes = scores(variant(BASIC_RETURN, BASIC_RETURN.replace(
        "return F.relu(out + shortcut)", "shortcut += out\n        return F.relu(shortcut)")))
    assert got[BOTTLENECK] == got[PREACT] == got[INIT] == 1, got
    basic = failures(outcomes[BASIC])
    assert list(basic) == ["BasicBlock 8->8, stride left out (default 1), channels kept (identity), training step "
                           "(loss.backward(): gradients, input left unchanged)"], basic
    # Its cases alone would keep 23 of 25 (a training step weighs 2, each forward check 1), but nothing built on
    # a block that cannot be trained can learn: half of the test at most, and its feedback says so.
    assert got[BASIC] == 0.5, got
    assert to_result("3.1", BASIC, 5, outcomes[BASIC]).output.splitlines()[1] == (
        "15 of 15 categories and 4 of 5 training steps passed: 15 x 1 + 4 x 2 = 23 of 25, so 4.60 of 5 points; "
        "but BasicBlock cannot be trained (loss.backward() fails in a training step, or no gradient reaches a "
        "parameter or the input), which caps this test at 50%: 2.50 of 5 points")
    assert next(iter(basic.values())) == ("BasicBlock.forward changes a tensor autograd still needs, so "
                                          "loss.backward() fails: add into a new tensor, e.g. `out = out + "
                                          "shortcut`, rather than in place (`+=`)")
    # The networks of BasicBlocks fail their training step too, and say where to look first.
    networks = failures(outcomes[NETWORKS])
    assert sorted(networks) == [
        "ResNet(BasicBlock, [1, 1], widths=(8, 16), num_classes=5, stem='imagenet') forward, training step "
        "(loss.backward(): gradients, input left unchanged)",
        "resnet20 forward, training step (loss.backward(): gradients, input left unchanged)"], networks
    assert networks["resnet20 forward, training step (loss.backward(): gradients, input left unchanged)"].startswith(
        "resnet20 uses BasicBlock, whose test (3.1) failed: fix that first; here: ResNet.forward or a block's "
        "forward changes a tensor autograd still needs")
    # Those two networks cannot be trained either: 37.5 of 41.5 by their cases' weights, capped at half.
    assert got[NETWORKS] == 0.5 and outcomes[NETWORKS].cap[1].startswith(
        "resnet20 and ResNet(BasicBlock, [1, 1], widths=(8, 16), num_classes=5, stem='imagenet') cannot be "
        "trained"), outcomes[NETWORKS].cap


def test_torchvisions_out_plus_equals_shortcut_keeps_full_marks():
    # torchvision's own BasicBlock adds in place into batchnorm's output, which its backward does not need.
    got, _ = scores(variant(BASIC_RETURN, BASIC_RETURN.replace(
        "return F.relu(out + shortcut)", "out += shortcut\n        return F.relu(out)")))
    assert all(value == 1 for value in got.values()), got


def test_a_detached_shortcut_loses_only_the_training_steps():
    got, outcomes = scores(variant(BASIC_RETURN, BASIC_RETURN.replace("out + shortcut", "out + shortcut.detach()")))
    assert got[BOTTLENECK] == got[PREACT] == got[INIT] == 1, got
    basic = failures(outcomes[BASIC])
    assert len(basic) == 5 and all("training step" in label for label in basic), basic
    # Where the shortcut is a projection its weights get no gradient; where it is the identity, the input's is off.
    assert basic["BasicBlock 8->8, stride left out (default 1), channels kept (identity), training step (loss."
                 "backward(): gradients, input left unchanged)"] \
        == "the gradient of the input x is off: max relative error over the tolerance (1e-05)"
    assert sum(message.startswith("no gradient reached downsample.0.weight: something cuts its path to the loss")
               for message in basic.values()) == 4, basic
    # A projection that never learns: the block cannot be trained, so its 15 of 25 are capped at half.
    assert got[BASIC] == 0.5, got
    networks = failures(outcomes[NETWORKS])
    # A missing gradient is said before any gradient that is off: it names what no training reaches.
    assert len(networks) == 2 and all(message.startswith(("resnet20 uses BasicBlock, whose test (3.1) failed: fix "
                                                          "that first; here: no gradient reached layer2.0.downsample",
                                                          "this network uses BasicBlock, whose test (3.1) failed: fix "
                                                          "that first; here: no gradient reached layer2.0.downsample"))
                                      for message in networks.values()), networks
    assert got[NETWORKS] == 0.5, got


def test_a_network_bug_with_sound_blocks_names_no_block():
    # The stem's ReLU left out: only networks with a stem batchnorm fail, and no block test is blamed.
    source = variant("x = F.relu(self.bn1(x))", "x = self.bn1(x)")
    got, outcomes = scores(source)
    assert got[NETWORKS] < 1 and all(got[n] == 1 for n in (BASIC, BOTTLENECK, PREACT, INIT)), got
    assert not any("whose test" in message for message in failures(outcomes[NETWORKS]).values())


def test_a_network_that_centres_its_input_in_place_is_told_so():
    # autograd allows it (nothing saved x before), so the input, sent back after the step, is what tells.
    got, outcomes = scores(variant("        x = self.conv1(x)\n", "        x -= x.mean()\n        x = self.conv1(x)\n"))
    assert all(got[n] == 1 for n in (BASIC, BOTTLENECK, PREACT, INIT)), got
    steps = {label: message for label, message in failures(outcomes[NETWORKS]).items() if "training step" in label}
    assert len(steps) == 6 and set(steps.values()) == {
        "ResNet.forward or a block's forward changes its input tensor in place: leave the caller's x as it was"}, steps
    assert outcomes[NETWORKS].cap is None   # they can be trained: their gradients flow
