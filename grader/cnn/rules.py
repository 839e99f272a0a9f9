"""The rules a submission of ``cnn`` must follow: its file names and size caps, the modules layers.py and
resnet.py may not use, the signature of every graded function, and the architectures milestone.pt may name.

One source for two readers: the grader enforces these rules, and the handout's ``check_submission.py`` checks
a submission against them before it is uploaded (release copies this file into the handout as
``submission_rules.py``). Plain data and the standard library only, so that the copy runs on a student's
machine as it is.
"""
SOURCE_FILES = ("layers.py", "initializers.py", "resnet.py", "quiz.py")
CHECKPOINT = "milestone.pt"
# A .py file: the largest solution file is 17 KB. The grader parses each file in its own process, and Python's
# parser takes up to about 370 bytes a byte of source (`x = [1, 1, ...]`): 2 MB took 741 MB, 512 KB about 190 MB.
MAX_SOURCE_BYTES = 512 << 10
MAX_CHECKPOINT_BYTES = 100 << 20  # milestone.pt: a ResNet-18 state_dict is 45 MB, in float64 90 MB

# The handout's given modules a submitted file may import (the contract): the grader runs every file beside its
# own copies of them.
GIVEN_MODULES = ("gradcheck.py", "cifar10.py")

# Imports that a file may not use (numpy is allowed whole, np.convolve and np.correlate included).
FORBIDDEN_MODULES = {
    "layers.py": ("torch", "tensorflow", "jax", "scipy.signal", "scipy.ndimage"),
    "resnet.py": ("torchvision",),
}

# The architectures a milestone checkpoint may name, each built by the factory of that name in resnet.py.
MILESTONE_ARCHS = ("resnet20", "resnet32", "resnet56", "resnet18", "preact_resnet18")

# Every graded function (a class: its constructor) and its parameters, as the contract fixes them.
SIGNATURES = {
    "layers.py": {
        "conv_forward_naive": "x, w, b, conv_param",
        "conv_backward_naive": "dout, cache",
        "max_pool_forward_naive": "x, pool_param",
        "max_pool_backward_naive": "dout, cache",
        "avg_pool_forward_naive": "x, pool_param",
        "avg_pool_backward_naive": "dout, cache",
        "batchnorm_forward": "x, gamma, beta, bn_param",
        "batchnorm_backward": "dout, cache",
        "batchnorm_backward_alt": "dout, cache",
        "spatial_batchnorm_forward": "x, gamma, beta, bn_param",
        "spatial_batchnorm_backward": "dout, cache",
    },
    "initializers.py": {
        "fan_in_and_fan_out": "shape",
        "calculate_gain": "nonlinearity, param=None",
        "xavier_normal": "shape, gain=1.0, mode='fan_avg', rng=None",
        "xavier_uniform": "shape, gain=1.0, mode='fan_avg', rng=None",
        "kaiming_normal": "shape, mode='fan_in', nonlinearity='relu', rng=None",
        "kaiming_uniform": "shape, mode='fan_in', nonlinearity='relu', rng=None",
        "activation_stds": "init, nonlinearity, dims=(4096, 4096, 4096, 4096, 4096, 4096, 4096), batch=16, rng=None",
    },
    "resnet.py": {
        "BasicBlock": "in_channels, out_channels, stride=1",
        "Bottleneck": "in_channels, width, stride=1",
        "PreActBlock": "in_channels, out_channels, stride=1",
        "ResNet": "block, layers, num_classes=10, widths=(64, 128, 256, 512), stem='cifar', zero_init_residual=False",
        "resnet20": "num_classes=10",
        "resnet32": "num_classes=10",
        "resnet56": "num_classes=10",
        "resnet18": "num_classes=10, stem='cifar'",
        "resnet34": "num_classes=10, stem='cifar'",
        "resnet50": "num_classes=10, stem='cifar'",
        "preact_resnet18": "num_classes=10",
    },
    "quiz.py": {
        "conv_output_size": "size, kernel, stride=1, pad=0",
        "pool_output_size": "size, kernel, stride, pad=0",
        "conv_layer": "c_in, size, filters, kernel, stride=1, pad=0, bias=True",
        "pool_layer": "c_in, size, kernel, stride, pad=0",
        "fc_layer": "d_in, d_out",
        "alexnet_table": "",
    },
}
