"""Where every point comes from. Edit the weights here; numbers order the tests on Gradescope.

Each part grades one submitted file; each test of a part is (number, name, points). Layers 45, initializers
10, resnet 20, quiz 10: 85 here, and 15 kept for the milestone checkpoint, which joins with its own checker.
"""
PARTS = {
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
