"""The reference resnet.py against the contract and against the grader's functional oracle.

The oracle (grader/cnn/oracles/resnet.py) composes F.conv2d, F.batch_norm and F.relu from a state_dict; here
it must agree with the reference modules (so that the grader can trust it on student networks), and it must
tell broken blocks apart from right ones.
"""
import ast
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader import paths, stats
from grader.cnn.oracles import resnet as oracle
from tests.support import solution

R = solution("resnet")
torch.set_num_threads(2)

# (factory, kwargs, parameter count from the contract)
CONFIGS = [
    ("resnet20", {}, 272_474), ("resnet32", {}, 466_906), ("resnet56", {}, 855_770),
    ("resnet18", {}, 11_173_962), ("preact_resnet18", {}, 11_172_170),
    ("resnet18", {"num_classes": 1000, "stem": "imagenet"}, 11_689_512),
    ("resnet34", {"num_classes": 1000, "stem": "imagenet"}, 21_797_672),
    ("resnet50", {"num_classes": 1000, "stem": "imagenet"}, 25_557_032),
]
CONFIG_IDS = [f"{name}-{kw.get('stem', 'cifar')}-{kw.get('num_classes', 10)}" for name, kw, _ in CONFIGS]
KINDS = {"basic": R.BasicBlock, "bottleneck": R.Bottleneck, "preact": R.PreActBlock}


def randomize(module, seed):
    """Non-trivial BN affine parameters and running statistics (and fresh conv / fc weights), float64."""
    g = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g, dtype=torch.float64))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=g, dtype=torch.float64))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g, dtype=torch.float64))
                m.num_batches_tracked.fill_(3)
    return module


def frozen_state(module):
    """A copy of the state_dict that the module's own forward cannot update in place."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def compare(module, reference, x, what):
    """module(x) against reference(params, x, training, state), in train and eval mode, outputs and buffers."""
    for training in (True, False):
        params = frozen_state(module)
        state = {}
        module.train(training)
        with torch.no_grad():
            expected = reference(params, x, training, state)
            out = module(x)
        assert out.shape == expected.shape, (what, training, out.shape, expected.shape)
        err = (out - expected).abs().max().item()
        assert err < 1e-10, f"{what} training={training}: max abs error {err:.3g}"
        after = module.state_dict()
        if training:
            assert state, what
            for key, value in state.items():
                assert torch.allclose(after[key].double(), value.double(), rtol=1e-12, atol=1e-12), (what, key)
        else:
            for key, value in params.items():
                assert torch.equal(after[key], value), f"{what}: eval mode changed {key}"


# ----------------------------------------------------------------------------------------------------------
# Architecture: counts, names, shapes
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_parameter_counts_and_state_dict_layout(config):
    name, kwargs, count = config
    model = getattr(R, name)(**kwargs)
    spec = oracle.arch(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == count
    assert oracle.num_parameters(spec) == count
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == dict(oracle.state_dict_shapes(spec))
    assert list(shapes) == list(oracle.state_dict_shapes(spec)), "torchvision's order"
    assert all(not isinstance(m, nn.Conv2d) or m.bias is None for m in model.modules())


def test_key_names():
    keys = set(R.resnet18().state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.weight", "layer2.0.downsample.1.num_batches_tracked",
            "layer4.1.bn2.bias", "fc.weight", "fc.bias"} <= keys
    assert not any(k.startswith(("layer1.0.downsample", "layer2.1.downsample", "layer5")) for k in keys)
    keys = set(R.resnet50(num_classes=1000, stem="imagenet").state_dict())
    assert {"layer1.0.downsample.0.weight", "layer1.0.conv3.weight", "layer4.2.bn3.weight"} <= keys
    assert not any(k.startswith("maxpool") for k in keys)
    keys = set(R.preact_resnet18().state_dict())
    assert {"bn.weight", "bn.running_mean", "layer2.0.downsample.weight", "layer1.0.bn1.weight"} <= keys
    assert "bn1.weight" not in keys and "layer2.0.downsample.0.weight" not in keys
    keys = set(R.resnet20().state_dict())
    assert {"layer2.0.downsample.0.weight", "layer3.0.downsample.1.running_mean", "layer3.2.conv2.weight"} <= keys
    assert not any(k.startswith(("layer4", "layer1.0.downsample")) for k in keys)


def test_structure_and_shapes():
    m = R.resnet18(num_classes=1000, stem="imagenet")
    assert (m.conv1.kernel_size, m.conv1.stride, m.conv1.padding) == ((7, 7), (2, 2), (3, 3))
    assert isinstance(m.maxpool, nn.MaxPool2d) and (m.maxpool.kernel_size, m.maxpool.stride, m.maxpool.padding) == (3, 2, 1)
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d)
    c = R.resnet20()
    assert (c.conv1.kernel_size, c.conv1.stride, c.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert not any(isinstance(x, nn.MaxPool2d) for x in c.modules())
    for model in (c, R.resnet18(), R.preact_resnet18(), R.resnet50()):
        for stage_index, stage in enumerate([model.layer1, model.layer2, model.layer3]):
            for j, block in enumerate(stage):
                stride = 2 if stage_index > 0 and j == 0 else 1
                conv = block.conv2 if isinstance(block, R.Bottleneck) else block.conv1
                assert conv.stride == (stride, stride)
    with torch.no_grad():
        for model, size, expected in [(R.resnet20(), 32, (3, 10)), (R.resnet20(), 13, (3, 10)),
                                      (R.resnet18(num_classes=1000, stem="imagenet").eval(), 64, (3, 1000)),
                                      (R.preact_resnet18(num_classes=7), 20, (3, 7))]:
            assert tuple(model(torch.randn(3, 3, size, size)).shape) == expected
    for block, c_in, c_out, stride, size, out_size in [(R.BasicBlock(8, 16, 2), 8, 16, 2, 7, 4),
                                                       (R.Bottleneck(8, 4, 2), 8, 16, 2, 8, 4),
                                                       (R.PreActBlock(8, 8, 1), 8, 8, 1, 5, 5)]:
        assert tuple(block(torch.randn(2, c_in, size, size)).shape) == (2, c_out, out_size, out_size)


def test_bad_arguments():
    with pytest.raises(ValueError, match="stem"):
        R.ResNet(R.BasicBlock, [1, 1], widths=(8, 16), stem="tiny")
    with pytest.raises(ValueError, match="widths"):
        R.ResNet(R.BasicBlock, [1, 1, 1], widths=(8, 16))


# ----------------------------------------------------------------------------------------------------------
# Forward passes against the oracle
# ----------------------------------------------------------------------------------------------------------

BLOCK_CASES = [
    ("basic", 16, 16, 1), ("basic", 16, 32, 2), ("basic", 16, 32, 1), ("basic", 16, 16, 2), ("basic", 32, 16, 2),
    ("bottleneck", 64, 16, 1), ("bottleneck", 16, 16, 1), ("bottleneck", 64, 32, 2), ("bottleneck", 64, 16, 2),
    ("preact", 16, 16, 1), ("preact", 16, 32, 2), ("preact", 16, 32, 1), ("preact", 16, 16, 2),
]


@pytest.mark.parametrize("case", BLOCK_CASES, ids=["-".join(map(str, c)) for c in BLOCK_CASES])
def test_block_matches_oracle(case):
    kind, c_in, width, stride = case
    block = randomize(KINDS[kind](c_in, width, stride), seed=c_in + width + stride)
    projection = oracle.needs_projection(c_in, width * oracle.EXPANSION[kind], stride)
    assert (block.downsample is not None) == projection
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == dict(oracle.block_shapes(kind, c_in, width, stride))
    x = torch.randn(4, c_in, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def reference(params, x, training, state):
        return oracle.block_forward(kind, params, "", x, stride, training, state)

    compare(block, reference, x, f"{kind}{(c_in, width, stride)}")


NETWORKS = [
    ("resnet20", lambda: R.resnet20(), oracle.arch("resnet20"), 32),
    ("preact_resnet18", lambda: R.preact_resnet18(), oracle.arch("preact_resnet18"), 16),
    ("resnet18-imagenet", lambda: R.resnet18(num_classes=1000, stem="imagenet"),
     oracle.arch("resnet18", 1000, "imagenet"), 48),
    ("bottleneck-imagenet-odd-widths", lambda: R.ResNet(R.Bottleneck, [1, 2, 1], 5, (8, 16, 8), "imagenet"),
     oracle.ArchSpec("bottleneck", (1, 2, 1), (8, 16, 8), "imagenet", 5), 37),
    ("preact-imagenet", lambda: R.ResNet(R.PreActBlock, [2, 1], 3, (8, 12), "imagenet"),
     oracle.ArchSpec("preact", (2, 1), (8, 12), "imagenet", 3), 30),
]


@pytest.mark.parametrize("net", NETWORKS, ids=[n[0] for n in NETWORKS])
def test_network_matches_oracle(net):
    name, build, spec, size = net
    torch.manual_seed(0)
    model = randomize(build(), seed=5)
    x = torch.randn(3, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def reference(params, x, training, state):
        return oracle.resnet_forward(params, spec, x, training, state)

    compare(model, reference, x, name)


class NoFinalRelu(R.BasicBlock):
    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return out + (x if self.downsample is None else self.downsample(x))


class ShortcutFromRawInput(R.PreActBlock):
    def forward(self, x):
        a = F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + shortcut


class ReluBeforeAdd(R.Bottleneck):
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.relu(self.bn3(self.conv3(out)))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


@pytest.mark.parametrize("broken, kind, args", [(NoFinalRelu, "basic", (8, 8, 1)),
                                                (ShortcutFromRawInput, "preact", (8, 16, 2)),
                                                (ReluBeforeAdd, "bottleneck", (32, 8, 1))])
def test_oracle_rejects_broken_blocks(broken, kind, args):
    block = randomize(broken(*args), seed=9)
    x = torch.randn(2, args[0], 6, 6, dtype=torch.float64)
    with pytest.raises(AssertionError):
        compare(block, lambda p, x, t, s: oracle.block_forward(kind, p, "", x, args[2], t, s), x, kind)


def imported_modules(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    return imported


def test_imports():
    """The oracle stands on its own in the autograder (no solutions/); resnet.py may not import torchvision."""
    # numpy for its arrays-in, arrays-out entry; the layout beside it (its copy in the milestone's child) or the
    # grader's
    assert imported_modules(paths.REPO / "grader" / "cnn" / "oracles" / "resnet.py") <= {
        "numpy", "torch", "architectures", "grader"}
    assert imported_modules(paths.REPO / "grader" / "cnn" / "architectures.py") <= {"collections", "dataclasses"}
    assert imported_modules(paths.solutions_dir("cnn") / "resnet.py") <= {"torch"}


# ----------------------------------------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------------------------------------

def last_bns(model):
    out = set()
    for m in model.modules():
        if isinstance(m, (R.BasicBlock, R.PreActBlock)):
            out.add(id(m.bn2))
        elif isinstance(m, R.Bottleneck):
            out.add(id(m.bn3))
    return out


@pytest.mark.parametrize("build", [R.resnet20, R.preact_resnet18, lambda: R.resnet50(1000, "imagenet")],
                         ids=["resnet20", "preact_resnet18", "resnet50-imagenet"])
def test_init_rules(build):
    # Kaiming normal, fan_out, relu: std sqrt(2 / (out_channels * kh * kw)). A tensor of n weights has a
    # sample std within 6 standard errors (sigma / sqrt(2n)) of sigma and a mean within 6 sigma / sqrt(n) of 0.
    # fan_in differs from fan_out by a factor 2 (downsample convs, first conv of a stage) to 16 (a stem conv),
    # a std off by sqrt(2) or more: with n >= 432 weights, 6 SE is at most 20%, enough to tell them apart;
    # the pooled check below (all convs together, in units of their own SE) is far sharper.
    torch.manual_seed(0)
    model = build()
    z_scores = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().double()
            n = w.numel()
            sigma = math.sqrt(2 / (m.out_channels * m.kernel_size[0] * m.kernel_size[1]))
            ok, message = stats.sample_verdict(w.numpy(), sigma)
            assert ok, (name, message)
            z_scores.append((w.std().item() / sigma - 1) * math.sqrt(2 * n))
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            if fan_in != m.out_channels * m.kernel_size[0] * m.kernel_size[1]:
                # a fan_in init would be off by sqrt(fan_out / fan_in): this is > 6 SE away
                assert abs(w.std().item() / math.sqrt(2 / fan_in) - 1) > 6 / math.sqrt(2 * n), name
        elif isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1), name
    # The mean of k z-scores (each ~ N(0, 1)) has standard error 1 / sqrt(k).
    k = len(z_scores)
    assert abs(sum(z_scores) / k) < 6 / math.sqrt(k), sum(z_scores) / k


@pytest.mark.parametrize("block, layers", [(R.BasicBlock, [2, 2]), (R.Bottleneck, [2, 1]), (R.PreActBlock, [2, 2])])
def test_zero_init_residual(block, layers):
    torch.manual_seed(0)
    plain = R.ResNet(block, layers, widths=(16, 32))
    zeroed = R.ResNet(block, layers, widths=(16, 32), zero_init_residual=True)
    targets = last_bns(zeroed)
    assert len(targets) == sum(layers)
    for m in zeroed.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == (0 if id(m) in targets else 1)) and torch.all(m.bias == 0)
    assert all(torch.all(m.weight == 1) for m in plain.modules() if isinstance(m, nn.BatchNorm2d))
    # A block with an identity shortcut is now relu(x) (x itself for a pre-activation block), in both modes.
    b = zeroed.layer1[1]
    x = torch.randn(2, 16 * block.expansion, 8, 8)
    expected = x if block is R.PreActBlock else F.relu(x)
    for training in (True, False):
        with torch.no_grad():
            assert torch.allclose(b.train(training)(x), expected, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# Training: resnet20 can memorise 64 random images with random labels
# ----------------------------------------------------------------------------------------------------------

def test_resnet20_overfits_random_labels():
    # 64 images of N(0, 1) pixels, labels uniform over 10 classes: nothing to learn but memorisation. 16x16
    # images (the CIFAR stem and pooling take any size) keep each step at a quarter of CIFAR's cost. Full-batch
    # SGD with momentum reaches 100% in both train mode (batch statistics) and eval mode (running statistics)
    # in 15 to 20 steps (seeds 0 to 5); we allow 300.
    torch.set_num_threads(2)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    model = R.resnet20()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = []
    for step in range(1, 301):
        model.train()
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        train_accuracy = (logits.argmax(1) == y).float().mean().item()
        if step % 5 == 0:
            model.eval()
            with torch.no_grad():
                eval_accuracy = (model(x).argmax(1) == y).float().mean().item()
            history.append((step, round(loss.item(), 4), train_accuracy, eval_accuracy))
            if train_accuracy == 1.0 and eval_accuracy == 1.0:
                break
    assert history[-1][2:] == (1.0, 1.0), history
