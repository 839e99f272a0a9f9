"""The contract's ResNet architectures as plain data: which blocks, widths, strides, shortcuts and stems each
factory of ``resnet.py`` builds, and the state_dict layout (keys and shapes, torchvision's) that follows.

No torch here: the grader's own process plans and judges with it, and the forward passes of
``oracles/resnet.py`` (which run only in children) read the architecture from it. The milestone's sandboxed
child gets a copy of this file beside its copy of the reference.
"""
from collections import OrderedDict
from dataclasses import dataclass

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

def join_key(prefix, name):
    """The state_dict key of ``name`` inside the block or network ``prefix`` (``""`` for none)."""
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
    p = lambda name: join_key(prefix, name)  # noqa: E731
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
