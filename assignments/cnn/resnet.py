"""Residual networks in PyTorch: the blocks, the network, and the usual configurations.

The lecture's motivation: a deeper plain network does *worse* than a shallower one, on the training set too,
so the trouble is optimisation, not overfitting. A deeper network could copy the shallow one and make its
extra layers the identity, if only the identity were easy to learn. A residual block makes it easy: it
computes ``out = relu(F(x) + x)``, so driving the residual branch F to zero gives (nearly) the identity.

A ResNet is a stem, then *stages* of blocks, then global average pooling and one fully connected layer. The
first block of every stage but the first halves the resolution (stride 2 in its first 3x3 conv) and doubles
the channels; that block's shortcut must then change shape too, so it becomes a *projection* (a 1x1 conv with
the same stride, then a batchnorm). Every other shortcut is the identity.

Names follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv2``, ``layer2.0.downsample.0``, ``fc``...), so
state_dicts can be exchanged with it. Every conv has ``bias=False``: the batchnorm after it has its own shift.
You may not import torchvision here.

Shapes: inputs are ``(N, C, H, W)``; a block with stride s maps H to ``ceil(H / s)`` (3x3 convs with padding 1).
"""
import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/34 and the CIFAR ResNets: two 3x3 convolutions.

    Layers (build them with exactly these attribute names):
        conv1: 3x3 conv, in_channels -> out_channels, stride ``stride``, padding 1, no bias; bn1: BatchNorm2d.
        conv2: 3x3 conv, out_channels -> out_channels, stride 1, padding 1, no bias;        bn2: BatchNorm2d.
        downsample: when ``stride != 1`` or ``in_channels != out_channels``,
            ``nn.Sequential(1x1 conv in -> out with stride ``stride``, no bias, BatchNorm2d(out))``;
            otherwise None (the shortcut is the identity).

    Forward, for x of shape (N, in_channels, H, W):
        out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
    where shortcut is ``downsample`` or the identity. Output: (N, out_channels, H', W'), H' = ceil(H / stride).
    """

    expansion = 1  # out_channels of the block = expansion * out_channels argument

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        raise NotImplementedError("BasicBlock.__init__: not implemented yet (see the docstring)")

    def forward(self, x):
        raise NotImplementedError("BasicBlock.forward: not implemented yet (see the docstring)")


class Bottleneck(nn.Module):
    """The residual block of ResNet-50/101/152: 1x1 reduce, 3x3, 1x1 expand (the lecture's "bottleneck").

    ``width`` is the channel count of the 3x3 conv; the block outputs ``width * expansion`` (= 4 * width)
    channels. The 1x1 convs make the block cheap: most of its channels never meet a 3x3 kernel.

    Layers:
        conv1: 1x1, in_channels -> width, stride 1, no bias; bn1.
        conv2: 3x3, width -> width, stride ``stride`` (the stride sits here, as in torchvision), padding 1; bn2.
        conv3: 1x1, width -> width * 4, no bias; bn3.
        downsample: when ``stride != 1`` or ``in_channels != width * 4``:
            ``nn.Sequential(1x1 conv in_channels -> width * 4, stride ``stride``, no bias, BatchNorm2d)``; else None.

    Forward:
        out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
    Output: (N, 4 * width, ceil(H / stride), ceil(W / stride)).
    """

    expansion = 4

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        raise NotImplementedError("Bottleneck.__init__: not implemented yet (see the docstring)")

    def forward(self, x):
        raise NotImplementedError("Bottleneck.forward: not implemented yet (see the docstring)")


class PreActBlock(nn.Module):
    """The "pre-activation" residual block (He et al., 2016): batchnorm and ReLU come *before* each conv.

    Nothing follows the addition, so the shortcut path from the input to the output of the network is a
    clean chain of identities.

    Layers:
        bn1: BatchNorm2d(in_channels); conv1: 3x3, in -> out, stride ``stride``, padding 1, no bias;
        bn2: BatchNorm2d(out_channels); conv2: 3x3, out -> out, stride 1, padding 1, no bias;
        downsample: when ``stride != 1`` or ``in_channels != out_channels``, a bare
            ``nn.Conv2d(in, out, 1, stride=stride, bias=False)`` (no batchnorm; its state_dict key is
            ``downsample.weight``); else None.

    Forward:
        a = relu(bn1(x))                         # the pre-activation
        out = conv2(relu(bn2(conv1(a))))
        return out + shortcut                    # no ReLU after the addition
    where ``shortcut = downsample(a)`` (the projection sees the pre-activated input) when there is a
    downsample, and ``shortcut = x`` (the raw input) otherwise.
    """

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        raise NotImplementedError("PreActBlock.__init__: not implemented yet (see the docstring)")

    def forward(self, x):
        raise NotImplementedError("PreActBlock.forward: not implemented yet (see the docstring)")


class ResNet(nn.Module):
    """A residual network: stem, stages of blocks, global average pooling, fully connected layer.

    Arguments:
        block: the block class, ``BasicBlock``, ``Bottleneck`` or ``PreActBlock``.
        layers: the number of blocks of each stage, e.g. [2, 2, 2, 2] for ResNet-18. One stage per entry.
        num_classes: outputs of ``fc``.
        widths: the width of each stage (the ``out_channels`` / ``width`` argument of its blocks); must have
            as many entries as ``layers`` (ValueError otherwise). The stem outputs ``widths[0]`` channels.
        stem: "cifar" (32x32 images) or "imagenet" (224x224); anything else: ValueError.
        zero_init_residual: when True, set the weight of the last batchnorm of each block's residual branch to
            0 (``bn2`` in BasicBlock and PreActBlock, ``bn3`` in Bottleneck): every block then starts as (nearly)
            the identity, which helps large-batch training (Goyal et al., 2017).

    Attributes (torchvision's names):
        conv1: stem conv, 3 -> widths[0], no bias: 3x3 stride 1 padding 1 ("cifar") or 7x7 stride 2 padding 3
            ("imagenet");
        bn1: BatchNorm2d(widths[0]), followed by ReLU, except in a network of PreActBlocks (no ``bn1`` there:
            its first block pre-activates its input);
        maxpool: ``nn.MaxPool2d(3, stride=2, padding=1)``, for the "imagenet" stem only;
        layer1, layer2, ...: ``nn.Sequential`` of blocks. Stage i has ``layers[i]`` blocks of width
            ``widths[i]``; its first block has stride 1 in stage 1 and 2 in every later stage and takes the
            previous stage's output channels (``widths[i-1] * block.expansion``, or ``widths[0]`` after the stem);
            the others have stride 1 and ``widths[i] * block.expansion`` input channels;
        bn: BatchNorm2d of the last stage's output channels, followed by ReLU, in a network of PreActBlocks only
            (pre-activation blocks end on a plain addition, so the network normalises once at the end);
        avgpool: ``nn.AdaptiveAvgPool2d(1)``; fc: ``nn.Linear(widths[-1] * block.expansion, num_classes)``.

    Initialisation: every conv weight kaiming-normal with ``mode="fan_out", nonlinearity="relu"``
    (``nn.init.kaiming_normal_``), every BatchNorm2d weight 1 and bias 0; ``fc`` keeps PyTorch's default.
    Then ``zero_init_residual`` as above.

    Forward: x (N, 3, H, W) -> logits (N, num_classes): stem, stages, (bn and ReLU), avgpool, flatten, fc.

    Hint: register the stages with ``setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))`` (or
    ``self.add_module``) so that they get the right names; keep the number of stages to loop over them in
    ``forward``. ``issubclass(block, PreActBlock)`` tells the block kinds apart.
    """

    def __init__(self, block, layers, num_classes=10, widths=(64, 128, 256, 512), stem="cifar",
                 zero_init_residual=False):
        super().__init__()
        raise NotImplementedError("ResNet.__init__: not implemented yet (see the docstring)")

    def forward(self, x):
        raise NotImplementedError("ResNet.forward: not implemented yet (see the docstring)")


# ----------------------------------------------------------------------------------------------------------
# Factories (given): the configurations of the papers. The CIFAR ResNets of He et al. (2016, section 4.2)
# have 6n + 2 layers: a 3x3 stem conv, three stages of n BasicBlocks (2n convs each) of widths 16, 32, 64, and
# the fc layer. Ours use projection shortcuts where the paper's "option A" pads with zeros, so they have
# slightly more parameters than the paper's 0.27M / 0.46M / 0.85M.
# ----------------------------------------------------------------------------------------------------------

def resnet20(num_classes=10):
    """ResNet-20 for CIFAR-10: n = 3, 272,474 parameters."""
    return ResNet(BasicBlock, [3, 3, 3], num_classes=num_classes, widths=(16, 32, 64), stem="cifar")


def resnet32(num_classes=10):
    """ResNet-32 for CIFAR-10: n = 5, 466,906 parameters."""
    return ResNet(BasicBlock, [5, 5, 5], num_classes=num_classes, widths=(16, 32, 64), stem="cifar")


def resnet56(num_classes=10):
    """ResNet-56 for CIFAR-10: n = 9, 855,770 parameters."""
    return ResNet(BasicBlock, [9, 9, 9], num_classes=num_classes, widths=(16, 32, 64), stem="cifar")


def resnet18(num_classes=10, stem="cifar"):
    """ResNet-18: BasicBlocks [2, 2, 2, 2]. 11,173,962 parameters (10 classes, cifar stem); 11,689,512 as
    torchvision's (1000 classes, imagenet stem)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, stem=stem)


def resnet34(num_classes=10, stem="cifar"):
    """ResNet-34: BasicBlocks [3, 4, 6, 3]. 21,797,672 parameters with 1000 classes and the imagenet stem."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, stem=stem)


def resnet50(num_classes=10, stem="cifar"):
    """ResNet-50: Bottlenecks [3, 4, 6, 3]. 25,557,032 parameters with 1000 classes and the imagenet stem."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, stem=stem)


def preact_resnet18(num_classes=10):
    """Pre-activation ResNet-18 for CIFAR-10: PreActBlocks [2, 2, 2, 2], 11,172,170 parameters."""
    return ResNet(PreActBlock, [2, 2, 2, 2], num_classes=num_classes, stem="cifar")
