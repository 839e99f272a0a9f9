"""Public tests for resnet.py. Run ``pytest tests/test_resnet.py`` in the handout folder (CPU, a few seconds).

Each block test checks the layers' names and hyperparameters, the shortcut rule (identity or projection), the
output shape, and the forward pass against the docstring's formula composed from your own layers (in train
and eval mode). The network test checks parameter counts against the contract's numbers, state_dict names,
the stem, the strides of the stages, the initialisation and ``zero_init_residual``.
"""
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

import resnet

SIGMAS = 6  # standard errors allowed in the statistical checks of the initialisation


def _randomize_bn(module, generator):
    """Give every batchnorm non-trivial parameters and running statistics, so that eval mode tests something."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=generator))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=generator))
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))


def _check_conv(what, conv, c_in, c_out, kernel, stride, padding):
    assert isinstance(conv, nn.Conv2d), f"{what}: expected an nn.Conv2d, got {type(conv).__name__}"
    got = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.bias is None)
    expected = (c_in, c_out, (kernel, kernel), (stride, stride), (padding, padding), True)
    assert got == expected, (f"{what}: expected (in, out, kernel, stride, padding, no bias) = {expected}, got {got}")


def _check_bn(what, bn, channels):
    assert isinstance(bn, nn.BatchNorm2d), f"{what}: expected an nn.BatchNorm2d, got {type(bn).__name__}"
    assert bn.num_features == channels, f"{what}: expected BatchNorm2d({channels}), got BatchNorm2d({bn.num_features})"


def _check_projection(what, block, c_in, c_out, stride, with_bn=True):
    needed = stride != 1 or c_in != c_out
    if not needed:
        assert block.downsample is None, (
            f"{what}: stride 1 and {c_in} -> {c_out} channels: the shortcut is the identity, downsample must be None")
        return
    assert block.downsample is not None, (
        f"{what}: stride {stride}, {c_in} -> {c_out} channels: the shortcut needs a projection (downsample)")
    if with_bn:
        ds = block.downsample
        assert isinstance(ds, nn.Sequential) and len(ds) == 2, (
            f"{what}: downsample should be nn.Sequential(1x1 conv, BatchNorm2d); got {ds}")
        _check_conv(f"{what} downsample[0]", ds[0], c_in, c_out, 1, stride, 0)
        _check_bn(f"{what} downsample[1]", ds[1], c_out)
    else:
        _check_conv(f"{what} downsample (a bare 1x1 conv)", block.downsample, c_in, c_out, 1, stride, 0)


def _check_forward(what, block, reference, c_in, c_out, stride, generator):
    """``block(x)`` against ``reference(copy_of_block, x)`` in train and eval mode, float64."""
    block = block.double()
    _randomize_bn(block, generator)
    x = torch.randn(3, c_in, 9, 9, generator=generator, dtype=torch.float64)
    size = math.ceil(9 / stride)
    for training in (True, False):
        mode = "train" if training else "eval"
        twin = copy.deepcopy(block)
        block.train(training)
        twin.train(training)
        with torch.no_grad():
            out = block(x)
            expected = reference(twin, x)
        assert tuple(out.shape) == (3, c_out, size, size), (
            f"{what}, {mode} mode: input {tuple(x.shape)} should give output {(3, c_out, size, size)}, got {tuple(out.shape)}")
        err = (out - expected).abs().max().item()
        assert err < 1e-10, f"{what}, {mode} mode: output differs from the docstring's formula by up to {err:.3g}"


def _shortcut(block, x, pre=None):
    if block.downsample is None:
        return x
    return block.downsample(x if pre is None else pre)


def test_basic_block():
    g = torch.Generator().manual_seed(0)

    def reference(b, x):
        out = F.relu(b.bn1(b.conv1(x)))
        return F.relu(b.bn2(b.conv2(out)) + _shortcut(b, x))

    for c_in, c_out, stride in [(16, 16, 1), (16, 32, 2), (16, 32, 1), (16, 16, 2), (32, 16, 2)]:
        what = f"BasicBlock({c_in}, {c_out}, stride={stride})"
        block = resnet.BasicBlock(c_in, c_out, stride)
        assert resnet.BasicBlock.expansion == 1, "BasicBlock.expansion should be 1"
        _check_conv(f"{what}.conv1", block.conv1, c_in, c_out, 3, stride, 1)
        _check_bn(f"{what}.bn1", block.bn1, c_out)
        _check_conv(f"{what}.conv2", block.conv2, c_out, c_out, 3, 1, 1)
        _check_bn(f"{what}.bn2", block.bn2, c_out)
        _check_projection(what, block, c_in, c_out, stride)
        projection = c_in * c_out + 2 * c_out if (stride != 1 or c_in != c_out) else 0
        expected = 9 * c_in * c_out + 9 * c_out * c_out + 4 * c_out + projection
        got = sum(p.numel() for p in block.parameters())
        assert got == expected, f"{what}: expected {expected} parameters, got {got}"
        _check_forward(what, block, reference, c_in, c_out, stride, g)


def test_bottleneck():
    g = torch.Generator().manual_seed(1)

    def reference(b, x):
        out = F.relu(b.bn1(b.conv1(x)))
        out = F.relu(b.bn2(b.conv2(out)))
        return F.relu(b.bn3(b.conv3(out)) + _shortcut(b, x))

    assert resnet.Bottleneck.expansion == 4, "Bottleneck.expansion should be 4"
    for c_in, width, stride in [(64, 16, 1), (16, 16, 1), (64, 32, 2), (128, 32, 2), (32, 8, 1)]:
        what = f"Bottleneck({c_in}, {width}, stride={stride})"
        c_out = 4 * width
        block = resnet.Bottleneck(c_in, width, stride)
        _check_conv(f"{what}.conv1", block.conv1, c_in, width, 1, 1, 0)
        _check_bn(f"{what}.bn1", block.bn1, width)
        _check_conv(f"{what}.conv2 (it carries the stride)", block.conv2, width, width, 3, stride, 1)
        _check_bn(f"{what}.bn2", block.bn2, width)
        _check_conv(f"{what}.conv3", block.conv3, width, c_out, 1, 1, 0)
        _check_bn(f"{what}.bn3", block.bn3, c_out)
        _check_projection(what, block, c_in, c_out, stride)
        _check_forward(what, block, reference, c_in, c_out, stride, g)


def test_preact_block():
    g = torch.Generator().manual_seed(2)

    def reference(b, x):
        a = F.relu(b.bn1(x))
        out = b.conv2(F.relu(b.bn2(b.conv1(a))))
        return out + _shortcut(b, x, pre=a)  # the projection sees the pre-activation a, the identity sees x

    assert resnet.PreActBlock.expansion == 1, "PreActBlock.expansion should be 1"
    for c_in, c_out, stride in [(16, 16, 1), (16, 32, 2), (16, 32, 1), (16, 16, 2)]:
        what = f"PreActBlock({c_in}, {c_out}, stride={stride})"
        block = resnet.PreActBlock(c_in, c_out, stride)
        _check_bn(f"{what}.bn1 (it normalises the block's input)", block.bn1, c_in)
        _check_conv(f"{what}.conv1", block.conv1, c_in, c_out, 3, stride, 1)
        _check_bn(f"{what}.bn2", block.bn2, c_out)
        _check_conv(f"{what}.conv2", block.conv2, c_out, c_out, 3, 1, 1)
        _check_projection(what, block, c_in, c_out, stride, with_bn=False)
        _check_forward(what, block, reference, c_in, c_out, stride, g)


# (factory, keyword arguments, parameter count from the contract)
COUNTS = [
    ("resnet20", {}, 272_474), ("resnet32", {}, 466_906), ("resnet56", {}, 855_770),
    ("resnet18", {}, 11_173_962), ("preact_resnet18", {}, 11_172_170),
    ("resnet18", {"num_classes": 1000, "stem": "imagenet"}, 11_689_512),
    ("resnet34", {"num_classes": 1000, "stem": "imagenet"}, 21_797_672),
    ("resnet50", {"num_classes": 1000, "stem": "imagenet"}, 25_557_032),
]


def _check_init(what, model, zero_init):
    """Kaiming-normal (fan_out, relu) convs; BN weight 1 (or 0: zero_init_residual), bias 0."""
    last_bns = set()
    for m in model.modules():
        if isinstance(m, (resnet.BasicBlock, resnet.PreActBlock)):
            last_bns.add(id(m.bn2))
        elif isinstance(m, resnet.Bottleneck):
            last_bns.add(id(m.bn3))
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().double()
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(2 / fan_out)
            n = w.numel()
            # Sample std of n normal draws: standard error std / sqrt(2n); sample mean: std / sqrt(n).
            rel_tol = SIGMAS / math.sqrt(2 * n)
            got = w.std().item()
            assert abs(got / std - 1) < rel_tol, (
                f"{what}: {name}.weight should be kaiming-normal with mode='fan_out' (std sqrt(2 / {fan_out}) = "
                f"{std:.4g}); its std is {got:.4g} (allowed ratio 1 +- {rel_tol:.3f} for {n} weights)")
            assert abs(w.mean().item()) < SIGMAS * std / math.sqrt(n), f"{what}: {name}.weight should have mean 0"
        elif isinstance(m, nn.BatchNorm2d):
            weight = 0.0 if (zero_init and id(m) in last_bns) else 1.0
            assert torch.all(m.weight == weight) and torch.all(m.bias == 0), (
                f"{what}: {name} should start with weight {weight:g} and bias 0")


def test_resnet():
    torch.manual_seed(0)
    # Parameter counts of the factories, and torchvision's state_dict names.
    for factory, kwargs, expected in COUNTS:
        model = getattr(resnet, factory)(**kwargs)
        what = f"{factory}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        got = sum(p.numel() for p in model.parameters())
        assert got == expected, f"{what}: expected {expected:,} parameters, got {got:,}"
        keys = set(model.state_dict())
        stages = 4 if "18" in factory or "34" in factory or "50" in factory else 3
        wanted = ["conv1.weight", "fc.weight", "fc.bias", "layer1.0.conv1.weight", f"layer{stages}.0.conv2.weight"]
        if factory == "preact_resnet18":
            wanted += ["bn.weight", "bn.running_var", "layer2.0.downsample.weight", "layer1.0.bn1.weight"]
            unwanted = ["bn1.weight", "layer1.0.downsample.weight", "layer2.1.downsample.weight"]
        else:
            wanted += ["bn1.weight", "bn1.running_mean", "layer2.0.downsample.0.weight",
                       "layer2.0.downsample.1.weight", "layer2.0.downsample.1.running_var"]
            unwanted = ["bn.weight", "layer2.1.downsample.0.weight"]
            if factory != "resnet50":
                unwanted.append("layer1.0.downsample.0.weight")
            else:
                wanted += ["layer1.0.downsample.0.weight", "layer1.0.conv3.weight", "layer1.0.bn3.weight"]
        missing = [k for k in wanted if k not in keys]
        extra = [k for k in unwanted if k in keys]
        assert not missing, f"{what}: state_dict lacks {missing} (names must follow torchvision's)"
        assert not extra, f"{what}: state_dict should not have {extra}"
        assert not any(k.endswith(".bias") and "conv" in k for k in keys), f"{what}: convs must have bias=False"

    # Stem, stages and output shapes.
    for stem, size, kernel, stride, padding in [("cifar", 32, 3, 1, 1), ("imagenet", 64, 7, 2, 3)]:
        model = resnet.ResNet(resnet.BasicBlock, [1, 2, 1], num_classes=7, widths=(8, 16, 32), stem=stem)
        what = f"ResNet(BasicBlock, [1, 2, 1], num_classes=7, widths=(8, 16, 32), stem={stem!r})"
        _check_conv(f"{what}.conv1", model.conv1, 3, 8, kernel, stride, padding)
        _check_bn(f"{what}.bn1", model.bn1, 8)
        if stem == "imagenet":
            mp = getattr(model, "maxpool", None)
            assert isinstance(mp, nn.MaxPool2d) and (mp.kernel_size, mp.stride, mp.padding) in [(3, 2, 1), ((3, 3), (2, 2), (1, 1))], (
                f"{what}: expected maxpool = nn.MaxPool2d(3, stride=2, padding=1), got {mp}")
        for i, (count, width) in enumerate([(1, 8), (2, 16), (1, 32)]):
            stage = getattr(model, f"layer{i + 1}", None)
            assert isinstance(stage, nn.Sequential) and len(stage) == count, (
                f"{what}: layer{i + 1} should be an nn.Sequential of {count} blocks; got {type(stage).__name__}")
            for j, block in enumerate(stage):
                expected_stride = 2 if (i > 0 and j == 0) else 1
                assert block.conv1.stride == (expected_stride, expected_stride), (
                    f"{what}: layer{i + 1}.{j} should have stride {expected_stride}, got {block.conv1.stride}")
                assert block.conv2.out_channels == width, f"{what}: layer{i + 1}.{j} should have width {width}"
        assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d), f"{what}: avgpool should be nn.AdaptiveAvgPool2d(1)"
        assert model.fc.in_features == 32 and model.fc.out_features == 7, f"{what}: fc should be Linear(32, 7)"
        x = torch.randn(2, 3, size, size)
        model.eval()
        with torch.no_grad():
            out = model(x)
            h = F.relu(model.bn1(model.conv1(x)))
            if stem == "imagenet":
                h = model.maxpool(h)
            h = model.layer3(model.layer2(model.layer1(h)))
            expected = model.fc(model.avgpool(h).flatten(1))
        assert tuple(out.shape) == (2, 7), f"{what}: input {tuple(x.shape)} should give logits (2, 7), got {tuple(out.shape)}"
        err = (out - expected).abs().max().item()
        assert err < 1e-5, f"{what}: forward differs from stem -> stages -> avgpool -> fc by up to {err:.3g}"

    # A network of PreActBlocks: no bn1 in the stem, a final bn and ReLU before pooling.
    model = resnet.ResNet(resnet.PreActBlock, [1, 1], num_classes=5, widths=(8, 16))
    what = "ResNet(PreActBlock, [1, 1], num_classes=5, widths=(8, 16))"
    assert "bn1.weight" not in model.state_dict(), f"{what}: a pre-activation network has no bn1 in its stem"
    _check_bn(f"{what}.bn (the final batchnorm)", getattr(model, "bn", None), 16)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        out = model(x)
        h = model.layer2(model.layer1(model.conv1(x)))
        expected = model.fc(F.relu(model.bn(h)).mean(dim=(2, 3)))
    err = (out - expected).abs().max().item()
    assert err < 1e-5, f"{what}: forward differs from conv1 -> stages -> bn -> relu -> avgpool -> fc by up to {err:.3g}"

    # Initialisation, with and without zero_init_residual.
    for block, layers in [(resnet.BasicBlock, [2, 2]), (resnet.Bottleneck, [2, 1]), (resnet.PreActBlock, [2, 2])]:
        for zero_init in (False, True):
            model = resnet.ResNet(block, layers, widths=(32, 64), zero_init_residual=zero_init)
            _check_init(f"ResNet({block.__name__}, {layers}, widths=(32, 64), zero_init_residual={zero_init})",
                        model, zero_init)
    _check_init("resnet18()", resnet.resnet18(), False)
