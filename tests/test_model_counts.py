"""The quiz's closed forms (solutions/cnn/quiz.py) against counts taken from real PyTorch networks.

grader/cnn/model_counts.py counts parameters, multiply-adds and output memory from forward hooks (weight tensors
and output shapes), never from the quiz's formulas; here AlexNet (the lecture's table, 227 input) and VGG-16
(224 input, convs with bias, no batchnorm) are built in torch and both counts must agree layer by layer.
"""
import pytest
import torch
from torch import nn

from grader.cnn.model_counts import count_model
from support import solution

quiz = solution("quiz")

# Layer specs: ("conv", filters, kernel, stride, pad), ("maxpool", kernel, stride, pad), ("flatten",), ("fc", d_out).
ALEXNET = [
    ("conv", 64, 11, 4, 2), ("maxpool", 3, 2, 0),
    ("conv", 192, 5, 1, 2), ("maxpool", 3, 2, 0),
    ("conv", 384, 3, 1, 1), ("conv", 256, 3, 1, 1), ("conv", 256, 3, 1, 1), ("maxpool", 3, 2, 0),
    ("flatten",), ("fc", 4096), ("fc", 4096), ("fc", 1000),
]
VGG16_CONVS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
VGG16 = ([("maxpool", 2, 2, 0) if v == "M" else ("conv", v, 3, 1, 1) for v in VGG16_CONVS]
         + [("flatten",), ("fc", 4096), ("fc", 4096), ("fc", 1000)])

KEYS = ("c_out", "size_out", "memory_kb", "params", "flops")


def build(spec, c_in, size, device):
    """A torch model of ``spec`` (ReLU after every conv and hidden fc, dropout before the fc layers, as AlexNet
    and VGG have). On the CPU, weights are allocated uninitialised and zeroed (fast; values do not matter)."""
    layers, c, d = [], c_in, None
    fc_left = sum(1 for layer in spec if layer[0] == "fc")
    for layer in spec:
        if layer[0] == "conv":
            _, filters, kernel, stride, pad = layer
            layers += [nn.Conv2d(c, filters, kernel, stride, pad, device="meta"), nn.ReLU(inplace=True)]
            c = filters
            size = (size + 2 * pad - kernel) // stride + 1
        elif layer[0] == "maxpool":
            _, kernel, stride, pad = layer
            layers.append(nn.MaxPool2d(kernel, stride, pad))
            size = (size + 2 * pad - kernel) // stride + 1
        elif layer[0] == "flatten":
            layers.append(nn.Flatten())
            d = c * size * size
        else:
            fc_left -= 1
            layers += [nn.Dropout(0.5), nn.Linear(d, layer[1], device="meta")]
            if fc_left:
                layers.append(nn.ReLU(inplace=True))
            d = layer[1]
    model = nn.Sequential(*layers)
    if device != "meta":
        model = model.to_empty(device=device)
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
    return model


def quiz_rows(spec, c_in, size):
    """The quiz's row for every counted layer of ``spec`` (flatten has no module to hook, hence no row)."""
    rows, c = [], c_in
    for layer in spec:
        if layer[0] == "conv":
            _, filters, kernel, stride, pad = layer
            row = quiz.conv_layer(c, size, filters, kernel, stride=stride, pad=pad)
        elif layer[0] == "maxpool":
            _, kernel, stride, pad = layer
            row = quiz.pool_layer(c, size, kernel, stride, pad=pad)
        elif layer[0] == "flatten":
            c, size = c * size * size, None
            continue
        else:
            row = quiz.fc_layer(c, layer[1])
        rows.append(row)
        c, size = row["c_out"], row["size_out"]
    return rows


def assert_layers_agree(counted, rows, what):
    assert len(counted) == len(rows), f"{what}: {len(counted)} hooked layers, {len(rows)} quiz rows"
    for i, (layer, row) in enumerate(zip(counted, rows)):
        for key in KEYS:
            assert layer[key] == row[key], (f"{what}, layer {i} ({layer['name']}, {layer['kind']}): {key} "
                                            f"counted {layer[key]!r}, quiz {row[key]!r}")


@pytest.fixture(scope="module")
def alexnet_cpu():
    counts = count_model(build(ALEXNET, 3, 227, "cpu"), (3, 227, 227))
    yield counts


def test_alexnet_counts_match_quiz(alexnet_cpu):
    counts = alexnet_cpu
    assert counts["model_params"] == 61_100_840
    assert counts["params"] == counts["model_params"]
    assert_layers_agree(counts["layers"], quiz_rows(ALEXNET, 3, 227), "AlexNet")
    # ...and the solution's own table, row for row (flatten has no module).
    table = [row for row in quiz.alexnet_table() if row["name"] != "flatten"]
    assert_layers_agree(counts["layers"], table, "AlexNet vs alexnet_table()")
    assert [layer["kind"] for layer in counts["layers"]] == [
        "conv", "maxpool", "conv", "maxpool", "conv", "conv", "conv", "maxpool", "linear", "linear", "linear"]
    assert counts["flops"] == sum(row["flops"] for row in table) == 717_562_112   # the lecture's 0.7 GFLOP
    assert counts["layers"][0]["out_shape"] == (64, 56, 56)


def test_meta_device_counts_equal_cpu_counts(alexnet_cpu):
    # Shapes from PyTorch's meta kernels equal those of a real forward pass; VGG-16 below uses them.
    assert count_model(build(ALEXNET, 3, 227, "meta"), (3, 227, 227)) == alexnet_cpu


def test_vgg16_counts_match_quiz():
    model = build(VGG16, 3, 224, "meta")   # 138M parameters: the meta device spares 550 MB and 2 s
    counts = count_model(model, (3, 224, 224))
    assert sum(p.numel() for p in model.parameters()) == 138_357_544
    assert counts["params"] == counts["model_params"] == 138_357_544
    rows = quiz_rows(VGG16, 3, 224)
    assert_layers_agree(counts["layers"], rows, "VGG-16")
    assert counts["flops"] == sum(row["flops"] for row in rows)
    assert round(counts["flops"] / 1e9, 1) == 15.5   # multiply-adds, biases and pooling included
    # The slides' fc rows: fc6 25088 -> 4096 holds 102,760k weights (plus 4096 biases), flatten is 98 KB.
    fc6 = counts["layers"][-3]
    assert (fc6["params"], fc6["flops"]) == (25088 * 4096 + 4096, 25088 * 4096)
    # The GoogLeNet slide's "compare VGG-16" figures (memory 42.9 MB, params 1.1M, 7485 MFLOP) are those of
    # VGG-16's first six convs, conv1_1 to conv3_2 (its pools left out).
    convs = [layer for layer in counts["layers"] if layer["kind"] == "conv"][:6]
    assert sum(layer["params"] for layer in convs) == 1_145_408
    assert round(sum(layer["flops"] for layer in convs) / 1e6) == 7485
    assert round(sum(layer["memory_kb"] for layer in convs) / 1024, 1) == 42.9


GOOGLENET_STEM = [("conv", 64, 7, 2, 3), ("maxpool", 3, 2, 1), ("conv", 64, 1, 1, 0), ("conv", 192, 3, 1, 1),
                  ("maxpool", 3, 2, 1)]


def test_googlenet_stem_counts_match_quiz():
    counts = count_model(build(GOOGLENET_STEM, 3, 224, "cpu"), (3, 224, 224))
    rows = quiz_rows(GOOGLENET_STEM, 3, 224)
    assert_layers_agree(counts["layers"], rows, "GoogLeNet stem")
    # The slide's table: memory (KB), params (k), flop (M), rounded.
    rounded = [(round(r["memory_kb"]), round(r["params"] / 1000), round(r["flops"] / 1e6)) for r in rows]
    assert rounded == [(3136, 9, 118), (784, 0, 2), (784, 4, 13), (2352, 111, 347), (588, 0, 1)]
    # Its totals: 7.5 MB and 124K params as printed; the multiply-adds add up to 481 MFLOP (the slide prints 418).
    assert round(counts["memory_kb"] / 1024, 1) == 7.5
    assert counts["params"] == counts["model_params"] == 124_416
    assert round(counts["flops"] / 1e6) == 481


def test_other_modules():
    # GoogLeNet's head: global average pooling over 1024 x 7 x 7, as AvgPool2d(7) and as AdaptiveAvgPool2d(1).
    head = count_model(nn.Sequential(nn.AvgPool2d(7, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000)),
                       (1024, 7, 7))
    avg, adaptive, fc = head["layers"]
    expected_pool = quiz.pool_layer(1024, 7, 7, 1)
    assert {key: avg[key] for key in KEYS} == expected_pool
    assert (adaptive["flops"], adaptive["size_out"]) == (1024 * 1, 1)   # 1x1 input: windows of one element
    assert {key: fc[key] for key in KEYS} == quiz.fc_layer(1024, 1000)
    # Adaptive pooling 5 -> 3 uses windows [0, 2), [1, 4), [3, 5): lengths 2 + 3 + 2 = 7 per axis.
    uneven = count_model(nn.AdaptiveMaxPool2d(3), (2, 5, 5))["layers"][0]
    assert (uneven["flops"], uneven["out_shape"]) == (2 * 7 * 7, (2, 3, 3))
    # Grouped and depthwise convolutions: each output is a dot product over C_in / groups channels.
    grouped = count_model(nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), (8, 10, 10))["layers"][0]
    assert (grouped["params"], grouped["flops"]) == (16 * 2 * 9, 16 * 10 * 10 * 2 * 9)
    # Non-square output; a module run twice counts its parameters once.
    conv = nn.Conv2d(3, 3, (3, 1))
    twice = count_model(nn.Sequential(conv, conv), (3, 9, 4))
    assert [layer["out_shape"] for layer in twice["layers"]] == [(3, 7, 4), (3, 5, 4)]
    assert twice["layers"][0]["size_out"] == (7, 4)
    assert twice["params"] == twice["model_params"] == 3 * 3 * 3 + 3
    assert twice["flops"] == (3 * 7 * 4 + 3 * 5 * 4) * 3 * 3
    # Modules left in training mode stay so; batchnorm parameters are not counted.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.train()
    counts = count_model(model, (3, 5, 5))
    assert all(module.training for module in model.modules())
    assert (counts["params"], counts["model_params"]) == (4 * 27 + 4, 4 * 27 + 4 + 8)
