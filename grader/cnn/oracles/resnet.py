"""A functional reference for the ResNets of ``resnet.py``: forward passes written with ``torch.nn.functional``.

Nothing here builds an ``nn.Module``: every function reads weights from a mapping of state_dict keys to tensors
(a student's ``state_dict()``, a checkpoint, or the tensors of a model under test) and composes ``F.conv2d``,
``F.batch_norm``, ``F.relu``, ``F.max_pool2d``, ``F.linear``. The architecture (which blocks, strides, shortcuts)
comes from the contract's rules and an ``ArchSpec``, never from the keys found in the mapping; a missing key
raises KeyError. Compare the key set first with ``state_dict_shapes``.

Conventions (torchvision's, the contract's):

* ``prefix`` names a block inside a network, e.g. ``"layer2.0"`` (with or without the trailing dot; ``""``
  for a block on its own);
* batchnorm uses PyTorch's defaults, eps 1e-5 and momentum 0.1, the batch statistics when ``training`` and
  the running ones otherwise;
* when ``state`` (a dict) is given and ``training`` is true, the updated running statistics are written to it
  under their state_dict keys (``running_mean``, ``running_var``, ``num_batches_tracked``), as new tensors: the
  input mapping is never modified.

Works in any floating dtype; the grader uses float64.
"""
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
EXPANSION = {"basic": 1, "bottleneck": 4, "preact": 1}
STEMS = ("cifar", "imagenet")


@dataclass(frozen=True)
class ArchSpec:
    """What ``ResNet(block, layers, num_classes, widths, stem)`` builds; ``block`` is a key of EXPANSION."""

    block: str
    layers: tuple
    widths: tuple = (64, 128, 256, 512)
    stem: str = "cifar"
    num_classes: int = 10

    def __post_init__(self):
        if self.block not in EXPANSION:
            raise ValueError(f"unknown block kind {self.block!r}; expected one of {sorted(EXPANSION)}")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; expected one of {STEMS}")
        if len(self.layers) != len(self.widths):
            raise ValueError(f"layers {self.layers} and widths {self.widths} differ in length")
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    def blocks(self):
        """``(prefix, in_channels, width, stride)`` of every block, in order."""
        in_channels = self.widths[0]
        for i, (count, width) in enumerate(zip(self.layers, self.widths)):
            for j in range(count):
                yield f"layer{i + 1}.{j}", in_channels, width, (2 if i > 0 and j == 0 else 1)
                in_channels = width * EXPANSION[self.block]

    @property
    def out_channels(self):
        return self.widths[-1] * EXPANSION[self.block]


_FACTORIES = {
    "resnet20": lambda num_classes, stem: ArchSpec("basic", (3, 3, 3), (16, 32, 64), "cifar", num_classes),
    "resnet32": lambda num_classes, stem: ArchSpec("basic", (5, 5, 5), (16, 32, 64), "cifar", num_classes),
    "resnet56": lambda num_classes, stem: ArchSpec("basic", (9, 9, 9), (16, 32, 64), "cifar", num_classes),
    "resnet18": lambda num_classes, stem: ArchSpec("basic", (2, 2, 2, 2), stem=stem, num_classes=num_classes),
    "resnet34": lambda num_classes, stem: ArchSpec("basic", (3, 4, 6, 3), stem=stem, num_classes=num_classes),
    "resnet50": lambda num_classes, stem: ArchSpec("bottleneck", (3, 4, 6, 3), stem=stem,
                                                   num_classes=num_classes),
    "preact_resnet18": lambda num_classes, stem: ArchSpec("preact", (2, 2, 2, 2), stem="cifar",
                                                          num_classes=num_classes),
}
ARCH_NAMES = tuple(_FACTORIES)


def arch(name, num_classes=10, stem="cifar"):
    """The ArchSpec of the contract's factory ``name`` (``stem`` matters only for resnet18/34/50)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown architecture {name!r}; expected one of {ARCH_NAMES}")
    return _FACTORIES[name](num_classes, stem)


def needs_projection(in_channels, out_channels, stride):
    """The contract's shortcut rule: a projection when the stride or the channel count changes."""
    return stride != 1 or in_channels != out_channels


# ----------------------------------------------------------------------------------------------------------
# Expected state_dict layout
# ----------------------------------------------------------------------------------------------------------

def _join(prefix, name):
    prefix = prefix.rstrip(".")
    return f"{prefix}.{name}" if prefix else name


def _conv_shapes(name, c_in, c_out, k):
    return [(f"{name}.weight", (c_out, c_in, k, k))]


def _bn_shapes(name, channels):
    return [(f"{name}.weight", (channels,)), (f"{name}.bias", (channels,)),
            (f"{name}.running_mean", (channels,)), (f"{name}.running_var", (channels,)),
            (f"{name}.num_batches_tracked", ())]


def block_shapes(kind, in_channels, width, stride, prefix=""):
    """``[(key, shape)]`` of one block's state_dict, in torchvision's order; buffers included."""
    p = lambda name: _join(prefix, name)  # noqa: E731
    out = width * EXPANSION[kind]
    rows = []
    if kind == "basic":
        rows += _conv_shapes(p("conv1"), in_channels, width, 3) + _bn_shapes(p("bn1"), width)
        rows += _conv_shapes(p("conv2"), width, width, 3) + _bn_shapes(p("bn2"), width)
    elif kind == "bottleneck":
        rows += _conv_shapes(p("conv1"), in_channels, width, 1) + _bn_shapes(p("bn1"), width)
        rows += _conv_shapes(p("conv2"), width, width, 3) + _bn_shapes(p("bn2"), width)
        rows += _conv_shapes(p("conv3"), width, out, 1) + _bn_shapes(p("bn3"), out)
    elif kind == "preact":
        rows += _bn_shapes(p("bn1"), in_channels) + _conv_shapes(p("conv1"), in_channels, width, 3)
        rows += _bn_shapes(p("bn2"), width) + _conv_shapes(p("conv2"), width, width, 3)
    else:
        raise ValueError(f"unknown block kind {kind!r}")
    if needs_projection(in_channels, out, stride):
        if kind == "preact":
            rows += _conv_shapes(p("downsample"), in_channels, out, 1)
        else:
            rows += _conv_shapes(p("downsample.0"), in_channels, out, 1) + _bn_shapes(p("downsample.1"), out)
    return rows


def state_dict_shapes(spec):
    """OrderedDict ``key -> shape`` of the whole network's state_dict (parameters and buffers)."""
    rows = _conv_shapes("conv1", 3, spec.widths[0], 3 if spec.stem == "cifar" else 7)
    if spec.block != "preact":
        rows += _bn_shapes("bn1", spec.widths[0])
    for prefix, in_channels, width, stride in spec.blocks():
        rows += block_shapes(spec.block, in_channels, width, stride, prefix)
    if spec.block == "preact":
        rows += _bn_shapes("bn", spec.out_channels)
    rows += [("fc.weight", (spec.num_classes, spec.out_channels)), ("fc.bias", (spec.num_classes,))]
    return OrderedDict(rows)


def is_buffer(key):
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def num_parameters(spec):
    """The number of trainable parameters (buffers excluded)."""
    total = 0
    for key, shape in state_dict_shapes(spec).items():
        if not is_buffer(key):
            count = 1
            for size in shape:
                count *= size
            total += count
    return total


# ----------------------------------------------------------------------------------------------------------
# Forward passes
# ----------------------------------------------------------------------------------------------------------

def conv(params, name, x, stride=1, padding=0):
    """``F.conv2d`` with the weight ``params[name + ".weight"]`` and no bias."""
    return F.conv2d(x, params[f"{name}.weight"], None, stride=stride, padding=padding)


def batch_norm(params, name, x, training, state=None):
    """``F.batch_norm`` with the affine parameters and running statistics stored under ``name``."""
    running_mean = params[f"{name}.running_mean"].clone()
    running_var = params[f"{name}.running_var"].clone()
    out = F.batch_norm(x, running_mean, running_var, params[f"{name}.weight"], params[f"{name}.bias"],
                       training=training, momentum=BN_MOMENTUM, eps=BN_EPS)
    if training and state is not None:
        state[f"{name}.running_mean"] = running_mean
        state[f"{name}.running_var"] = running_var
        tracked = params.get(f"{name}.num_batches_tracked") if hasattr(params, "get") else None
        state[f"{name}.num_batches_tracked"] = (torch.tensor(0) if tracked is None else tracked.clone()) + 1
    return out


def _shortcut(params, prefix, x, in_channels, out_channels, stride, training, state):
    """The shortcut of a post-activation block: ``downsample`` (1x1 conv with the stride, then BN) when the
    shape changes, else the identity."""
    if not needs_projection(in_channels, out_channels, stride):
        return x
    p = lambda name: _join(prefix, name)  # noqa: E731
    return batch_norm(params, p("downsample.1"), conv(params, p("downsample.0"), x, stride), training, state)


def basic_block(params, prefix, x, stride=1, training=False, state=None):
    """BasicBlock: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
    p = lambda name: _join(prefix, name)  # noqa: E731
    in_channels = params[p("conv1.weight")].shape[1]
    out_channels = params[p("conv2.weight")].shape[0]
    out = F.relu(batch_norm(params, p("bn1"), conv(params, p("conv1"), x, stride, 1), training, state))
    out = batch_norm(params, p("bn2"), conv(params, p("conv2"), out, 1, 1), training, state)
    return F.relu(out + _shortcut(params, prefix, x, in_channels, out_channels, stride, training, state))


def bottleneck(params, prefix, x, stride=1, training=False, state=None):
    """Bottleneck: 1x1, 3x3 (with the stride), 1x1 to 4 * width; add the shortcut, then ReLU."""
    p = lambda name: _join(prefix, name)  # noqa: E731
    in_channels = params[p("conv1.weight")].shape[1]
    out_channels = params[p("conv3.weight")].shape[0]
    out = F.relu(batch_norm(params, p("bn1"), conv(params, p("conv1"), x), training, state))
    out = F.relu(batch_norm(params, p("bn2"), conv(params, p("conv2"), out, stride, 1), training, state))
    out = batch_norm(params, p("bn3"), conv(params, p("conv3"), out), training, state)
    return F.relu(out + _shortcut(params, prefix, x, in_channels, out_channels, stride, training, state))


def preact_block(params, prefix, x, stride=1, training=False, state=None):
    """PreActBlock: ``a = relu(bn1(x))``; ``conv2(relu(bn2(conv1(a)))) + shortcut``, no final ReLU.

    The shortcut is ``downsample(a)`` (a bare 1x1 conv on the pre-activated input) when the shape changes,
    else ``x`` itself.
    """
    p = lambda name: _join(prefix, name)  # noqa: E731
    in_channels = params[p("conv1.weight")].shape[1]
    out_channels = params[p("conv2.weight")].shape[0]
    a = F.relu(batch_norm(params, p("bn1"), x, training, state))
    out = conv(params, p("conv1"), a, stride, 1)
    out = conv(params, p("conv2"), F.relu(batch_norm(params, p("bn2"), out, training, state)), 1, 1)
    shortcut = conv(params, p("downsample"), a, stride) if needs_projection(in_channels, out_channels,
                                                                              stride) else x
    return out + shortcut


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck, "preact": preact_block}


def block_forward(kind, params, prefix, x, stride=1, training=False, state=None):
    """Dispatch to ``basic_block``, ``bottleneck`` or ``preact_block``."""
    return BLOCKS[kind](params, prefix, x, stride, training, state)


def resnet_forward(params, spec, x, training=False, state=None):
    """Logits of the network described by ``spec`` with the weights in ``params``, for images ``x``."""
    if spec.stem == "cifar":
        x = conv(params, "conv1", x, 1, 1)
    else:
        x = conv(params, "conv1", x, 2, 3)
    if spec.block != "preact":
        x = F.relu(batch_norm(params, "bn1", x, training, state))
    if spec.stem == "imagenet":
        x = F.max_pool2d(x, 3, stride=2, padding=1)
    for prefix, _, _, stride in spec.blocks():
        x = block_forward(spec.block, params, prefix, x, stride, training, state)
    if spec.block == "preact":
        x = F.relu(batch_norm(params, "bn", x, training, state))
    x = x.mean(dim=(2, 3))
    return F.linear(x, params["fc.weight"], params["fc.bias"])
