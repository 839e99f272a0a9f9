"""Where every point comes from. Edit the weights here; numbers order the tests on Gradescope.

Each part grades one submitted file; each test of a part is (number, name, points). Layers 45, initializers
10, resnet 20, quiz 10, milestone 15: 100.
"""
from grader.cnn.rules import MILESTONE_ARCHS

PARTS = {
    # Graded first, though numbered last (parts are graded in this order). Any order fits the container: the
    # grader's own process never loads torch, and one torch process runs at a time.
    "milestone": ("milestone.pt", [
        ("5.1", "milestone checkpoint", 3),
        ("5.2", "milestone accuracy", 12),
    ]),
    "layers": ("layers.py", [
        ("1.1", "conv_forward_naive", 6),
        ("1.2", "conv_backward_naive", 8),
        ("1.3", "max_pool_forward_naive", 4),
        ("1.4", "max_pool_backward_naive", 5),
        ("1.5", "avg_pool_forward_naive", 2),
        ("1.6", "avg_pool_backward_naive", 3),
        ("1.7", "batchnorm_forward", 6),
        ("1.8", "batchnorm_backward", 5),
        ("1.9", "batchnorm_backward_alt", 2),
        ("1.10", "spatial_batchnorm_forward", 2),
        ("1.11", "spatial_batchnorm_backward", 2),
    ]),
    "initializers": ("initializers.py", [
        ("2.1", "fan_in_and_fan_out", 1),
        ("2.2", "calculate_gain", 1),
        ("2.3", "xavier_normal", 1.5),
        ("2.4", "xavier_uniform", 1.5),
        ("2.5", "kaiming_normal", 1.5),
        ("2.6", "kaiming_uniform", 1.5),
        ("2.7", "activation_stds", 2),
    ]),
    "resnet": ("resnet.py", [
        ("3.1", "BasicBlock", 5),
        ("3.2", "Bottleneck", 4),
        ("3.3", "PreActBlock", 4),
        ("3.4", "ResNet networks", 5),
        ("3.5", "init and zero_init_residual", 2),
    ]),
    "quiz": ("quiz.py", [
        ("4.1", "conv_output_size and pool_output_size", 2),
        ("4.2", "conv_layer", 3),
        ("4.3", "pool_layer", 2),
        ("4.4", "fc_layer", 2),
        ("4.5", "alexnet_table", 1),
    ]),
}

# Gradescope visibility of every test: "visible", "after_due_date", "after_published" or "hidden"...
VISIBILITY = "visible"
# ...but for the tests named here by number, e.g. {"2.7": "after_due_date"}.
VISIBILITY_OF_TEST = {}
# Show each hidden case's category and verdict (never its input values); False shows only how many passed.
SHOW_CASES = True

# The milestone: CIFAR-10 test accuracy (percent) for full credit on 5.2, and below which 5.2 scores 0; linear
# in between. The handout's recipes reach 91-95 %; an untrained network scores 10 %.
MILESTONE_FULL_AT = 90.0
MILESTONE_ZERO_AT = 60.0
# The architectures a checkpoint may name (rules.py: the contract's), and how many test images each is evaluated on:
# all of them, but for the two whose evaluation would not fit Gradescope's budget on half a CPU (resnet18
# takes about 13 ms of CPU an image here): a class-stratified sample drawn per submission. At 92 % accuracy
# the sample's standard error is 0.4 %, stated in the output.
MILESTONE_IMAGES = {**dict.fromkeys(MILESTONE_ARCHS), "resnet18": 4000, "preact_resnet18": 4000}
# A network must earn its accuracy on images it was not trained on (the contract's milestone section). The
# milestone also evaluates, clean, a class-stratified sample of this many training images, and of the instructor's
# held-out split where there is one (check_milestone.heldout_path): at 97 % accuracy (a network on its training
# images) its standard error is 0.5 %, at 90 % 0.9 %; it adds a tenth to a resnet20's evaluation of the test set,
# a quarter to a resnet18's of its sample.
MILESTONE_COMPARISON_IMAGES = 1000
# 5.2 scores zero, and the leaderboard leaves the network out, where its test accuracy exceeds its training (or
# held-out) accuracy by more than MILESTONE_GAP_ERRORS standard errors of the difference plus a margin, in points.
# A network trained on the training split does at least as well on it as on the test split (it was fitted to
# it); one trained on the test images does the reverse. Three standard errors: a network as accurate on both is
# flagged by chance less than once in 700, even without the margin.
MILESTONE_GAP_ERRORS = 3
MILESTONE_GAP_MARGIN = 3.0
# A held-out split may be harder than the test set: CIFAR-10.1 costs the same models 4 to 10 points (Recht et al.
# 2018, "Do CIFAR-10 Classifiers Generalize to CIFAR-10?"), so its margin covers that. For images the course
# withheld from the same source as the test set, MILESTONE_GAP_MARGIN is enough.
MILESTONE_HELDOUT_MARGIN = 12.0
# The best CIFAR-10 test accuracy (percent) published for each architecture trained on the training split; on the
# official data set (its md5s checked), a test accuracy above it by more than MILESTONE_BEST_MARGIN (distillation,
# long schedules, heavier augmentation) scores zero the same way. resnet20/32/56: chenyaofo/pytorch-cifar-models
# (200 epochs; He et al. 2016, Table 6, report 91.25, 92.49 and 93.03); resnet18: DeVries & Taylor 2017,
# "Improved Regularization of Convolutional Neural Networks with Cutout", Table 1 (with cutout); preact_resnet18,
# the same capacity: the same figure (kuangliu/pytorch-cifar reports 95.11).
MILESTONE_BEST = {"resnet20": 92.60, "resnet32": 93.53, "resnet56": 94.37, "resnet18": 96.01,
                  "preact_resnet18": 96.01}
MILESTONE_BEST_MARGIN = 2.5

# How a test's cases weigh against each other (grader/checks.py: Case.kind), against a layout category's 1:
# fixed per kind of case, never per draw, so that a bug costs the same points whatever was drawn.
# A documented behaviour (a keyword at an edge value, a documented error, rng's promises...) weighs half a
# category. An everyday default weighs a whole one: behaviours.EVERYDAY_DEFAULT says which and why.
BEHAVIOUR_WEIGHT = 0.5
# A ResNet module that cannot train makes train.py fail: its training step weighs two forward checks.
STEP_WEIGHT = 2
# And a ResNet block or network that cannot be trained at all (loss.backward() raises, or a parameter gets no
# gradient) scores at most this share of its test, whatever else it passes: nothing built on it can learn.
UNTRAINABLE_SHARE = 0.5
# The rule, said once: in the handout's README (tests/test_handout_readme.py holds it to this) and by
# `grade --verbose`. Each test's feedback shows its own sum (checks.score_line).
SCORING = (
    "How a test's points are shared among its cases: each case has a weight. A category of the fixed layout (a "
    "shape, a stride, a mode, a float32 input...) weighs 1, and so does an everyday default (a keyword the usual "
    "call leaves out: the initializers' mode, bn_param's optional keys, conv_layer's bias and pool_layer's pad, as "
    "the notebooks and alexnet_table call them). Another documented behaviour (a keyword given at an edge value, a "
    "documented error, what rng promises, arguments left as they were found) weighs "
    f"{BEHAVIOUR_WEIGHT:g}, and a ResNet training step {STEP_WEIGHT:g}. A test earns its points times the weight "
    "of the cases you pass over the weight of all its cases; where some pass and others fail, its feedback shows "
    "that sum. A ResNet block or network that cannot be trained (loss.backward() raises, or a parameter gets no "
    f"gradient) earns at most {UNTRAINABLE_SHARE:.0%} of its test's points, since nothing built on it can learn.")
