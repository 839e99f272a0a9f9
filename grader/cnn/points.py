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
