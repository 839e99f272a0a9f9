"""A functional reference for the ResNets of ``resnet.py``: forward passes written with ``torch.nn.functional``.

Nothing here builds an ``nn.Module``: every function reads weights from a mapping of state_dict keys to tensors
(a student's ``state_dict()``, a checkpoint, or the tensors of a model under test) and composes ``F.conv2d``,
``F.batch_norm``, ``F.relu``, ``F.max_pool2d``, ``F.linear``. The architecture (which blocks, strides, shortcuts)
comes from the contract's rules and an ``ArchSpec``, never from the keys found in the mapping; a missing key
raises KeyError. Compare the key set first with ``state_dict_shapes``. The layout itself
(``ArchSpec``, ``arch``, ``state_dict_shapes``...) is ``grader/cnn/architectures.py``'s, re-exported here.

Conventions (torchvision's, the contract's):

* ``prefix`` names a block inside a network, e.g. ``"layer2.0"`` (with or without the trailing dot; ``""``
  for a block on its own);
* batchnorm uses PyTorch's defaults, eps 1e-5 and momentum 0.1, the batch statistics when ``training`` and
  the running ones otherwise;
* when ``state`` (a dict) is given and ``training`` is true, the updated running statistics are written to it
  under their state_dict keys (``running_mean``, ``running_var``, ``num_batches_tracked``), as new tensors: the
  input mapping is never modified.

Works in any floating dtype; the grader uses float64. Only the grader's children import this module (torch):
the checker's oracle child calls ``expected`` and ``gradients`` (arrays in, arrays out), the milestone's child
the forward.
"""
import numpy as np
import torch
import torch.nn.functional as F

try:   # the copy beside the milestone's sandboxed child, which imports its files by their bare names
    from architectures import (ARCH_NAMES, EXPANSION, STEMS, ArchSpec, arch, block_shapes,  # noqa: F401
                               is_buffer, join_key, needs_projection, num_parameters, state_dict_shapes)
except ModuleNotFoundError:
    from grader.cnn.architectures import (ARCH_NAMES, EXPANSION, STEMS, ArchSpec, arch, block_shapes,  # noqa: F401
                                          is_buffer, join_key, needs_projection, num_parameters,
                                          state_dict_shapes)

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


class Folded(dict):
    """Eval-mode weights in which the BatchNorms named in ``folded`` live inside the conv before each
    (``fold_batchnorm``): the forward passes skip those."""

    def __init__(self, params, folded):
        super().__init__(params)
        self.folded = frozenset(folded)


def conv(params, name, x, stride=1, padding=0):
    """``F.conv2d`` with the weight ``params[name + ".weight"]``; no bias, but where a BatchNorm was folded in."""
    return F.conv2d(x, params[f"{name}.weight"], params.get(f"{name}.bias"), stride=stride, padding=padding)


def batch_norm(params, name, x, training, state=None):
    """``F.batch_norm`` with the affine parameters and running statistics stored under ``name``."""
    if name in getattr(params, "folded", ()):
        return x
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
    p = lambda name: join_key(prefix, name)  # noqa: E731
    return batch_norm(params, p("downsample.1"), conv(params, p("downsample.0"), x, stride), training, state)


def basic_block(params, prefix, x, stride=1, training=False, state=None):
    """BasicBlock: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
    p = lambda name: join_key(prefix, name)  # noqa: E731
    in_channels = params[p("conv1.weight")].shape[1]
    out_channels = params[p("conv2.weight")].shape[0]
    out = F.relu(batch_norm(params, p("bn1"), conv(params, p("conv1"), x, stride, 1), training, state))
    out = batch_norm(params, p("bn2"), conv(params, p("conv2"), out, 1, 1), training, state)
    return F.relu(out + _shortcut(params, prefix, x, in_channels, out_channels, stride, training, state))


def bottleneck(params, prefix, x, stride=1, training=False, state=None):
    """Bottleneck: 1x1, 3x3 (with the stride), 1x1 to 4 * width; add the shortcut, then ReLU."""
    p = lambda name: join_key(prefix, name)  # noqa: E731
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
    p = lambda name: join_key(prefix, name)  # noqa: E731
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


def _conv_then_batchnorm(spec):
    """``(conv, BatchNorm)`` of every BatchNorm that directly follows a conv in the network ``spec``."""
    pairs = [] if spec.block == "preact" else [("conv1", "bn1")]
    for prefix, in_channels, width, stride in spec.blocks():
        p = lambda name: join_key(prefix, name)  # noqa: E731
        if spec.block == "preact":
            pairs.append((p("conv1"), p("bn2")))
            continue
        pairs += [(p(f"conv{i}"), p(f"bn{i}")) for i in range(1, 4 if spec.block == "bottleneck" else 3)]
        if needs_projection(in_channels, width * EXPANSION[spec.block], stride):
            pairs.append((p("downsample.0"), p("downsample.1")))
    return pairs


def fold_batchnorm(params, spec):
    """Eval-mode weights of the network ``spec`` with every BatchNorm that directly follows a conv folded into
    it: the conv's weight scaled per channel by ``gamma / sqrt(running_var + eps)``, and a bias ``beta -
    running_mean * that``. The same function up to round-off, with one pass fewer over each activation.
    ``params`` (a dict) is consumed: each conv weight is replaced as it is folded, so one network is held."""
    pairs = _conv_then_batchnorm(spec)
    for conv_name, bn in pairs:
        scale = params[f"{bn}.weight"] / torch.sqrt(params[f"{bn}.running_var"] + BN_EPS)
        params[f"{conv_name}.weight"] = params[f"{conv_name}.weight"] * scale.view(-1, 1, 1, 1)
        params[f"{conv_name}.bias"] = params[f"{bn}.bias"] - params[f"{bn}.running_mean"] * scale
    return Folded(params, [bn for _, bn in pairs])


def _model_forward(params, x, training, block, stride, spec, state=None):
    """The block ``block`` (with ``stride``) or the network ``spec`` (ArchSpec's fields as a dict)."""
    if spec is None:
        return block_forward(block, params, "", x, stride, training, state)
    return resnet_forward(params, ArchSpec(**spec), x, training, state)


def _tensors(state):
    """``state`` ({key: array}) as float64 tensors (num_batches_tracked stays int64)."""
    return {k: torch.from_numpy(v.astype(np.float64) if v.dtype != np.int64 else v) for k, v in state.items()}


def expected(state, x, training, block=None, stride=1, spec=None):
    """The reference's answer for a model under test, as arrays: ``(output, updated running statistics)`` of
    the block ``block`` (a kind of EXPANSION, with ``stride``) or of the network ``spec`` (ArchSpec's fields as
    a dict), holding the weights ``state`` ({key: array}), for the input ``x``; float64."""
    new_state = {}
    with torch.no_grad():
        out = _model_forward(_tensors(state), torch.from_numpy(x.astype(np.float64)), training, block, stride,
                             spec, new_state)
    return out.numpy(), {k: v.numpy() for k, v in new_state.items()}


def gradients(state, x, upstream, block=None, stride=1, spec=None):
    """One training step's gradients, as arrays: ``({parameter key: gradient}, gradient of x)`` of the loss
    ``(output * upstream).sum()``, train mode, for the model of ``expected`` holding the weights ``state``;
    float64."""
    params = _tensors(state)
    for key, value in params.items():
        if not is_buffer(key):
            value.requires_grad_()
    x = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    out = _model_forward(params, x, True, block, stride, spec)
    (out * torch.from_numpy(upstream.astype(np.float64))).sum().backward()
    return {k: v.grad.numpy() for k, v in params.items() if not is_buffer(k)}, x.grad.numpy()
