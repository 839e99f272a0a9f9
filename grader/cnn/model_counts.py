"""Count a PyTorch model's parameters, multiply-adds and activation memory by watching a forward pass.

An independent check of the quiz's closed forms: nothing here uses them. Forward hooks on the model's
``Conv2d``, ``Linear``, pooling (``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``)
modules read what each module really holds (its weight tensors) and really produces (its output's shape) during
one forward pass of a single example, and count with the lecture's conventions:

* conv: every output element is one dot product over ``weight[f]`` (``C_in / groups * KH * KW`` multiply-adds),
  so ``flops = outputs * weight[0].numel()``; the bias adds parameters, not flops;
* linear: every output element is a dot product over ``in_features`` inputs: ``flops = outputs * weight.shape[1]``;
* pooling: every output element looks at one window: ``flops = outputs * window area`` (for adaptive pooling the
  windows' areas are summed, as they can differ);
* params: the numel of the module's own parameters, counted once however often the module runs;
* memory: the output's elements for one example times their size in bytes, in KB of 1024 bytes.

The model may live on the ``meta`` device: shapes then come from PyTorch's own shape rules without any arithmetic,
which makes large models instant to count.
"""
import torch
from torch import nn

CONV = (nn.Conv2d,)
LINEAR = (nn.Linear,)
POOL = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE_POOL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
COUNTED = CONV + LINEAR + POOL + ADAPTIVE_POOL

_KINDS = {nn.Conv2d: "conv", nn.Linear: "linear", nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool",
          nn.AdaptiveAvgPool2d: "adaptive_avgpool", nn.AdaptiveMaxPool2d: "adaptive_maxpool"}


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _adaptive_window_sum(size_in, size_out):
    """Sum of the window lengths adaptive pooling uses along one axis (PyTorch's start/end rule)."""
    total = 0
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -((-(i + 1) * size_in) // size_out)   # ceil((i + 1) * size_in / size_out)
        total += end - start
    return total


def _flops(module, inp, out):
    n = out.shape[0]
    per_example = out.numel() // n
    if isinstance(module, CONV):
        return per_example * module.weight[0].numel()
    if isinstance(module, LINEAR):
        return per_example * module.weight.shape[1]
    if isinstance(module, POOL):
        kh, kw = _pair(module.kernel_size)
        return per_example * kh * kw
    if isinstance(module, ADAPTIVE_POOL):
        channels = out.shape[1] if out.dim() == 4 else out.shape[0]
        (h_in, w_in), (h_out, w_out) = inp.shape[-2:], out.shape[-2:]
        return channels * _adaptive_window_sum(h_in, h_out) * _adaptive_window_sum(w_in, w_out)
    raise TypeError(f"no count for {type(module).__name__}")


def _kind(module):
    for cls in type(module).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return type(module).__name__


def count_model(model, input_shape, dtype=None, device=None, bytes_per_element=None):
    """Run ``model`` once on a zero input of shape ``(1, *input_shape)`` and count layer by layer.

    ``dtype`` and ``device`` default to those of the model's first parameter (float32 on the CPU when it has
    none). ``bytes_per_element`` defaults to the outputs' real element size (4 for float32, as in the lecture).

    Returns a dict:
        layers: one dict per counted module call, in execution order, with ``name`` (the module's path in the
            model, e.g. "features.0"), ``kind`` ("conv", "linear", "maxpool", ...), ``out_shape`` (one example's
            output shape), ``c_out`` and ``size_out`` (``size_out`` is H when H == W, ``(H, W)`` otherwise, None
            for a linear layer's vector output), ``memory_kb``, ``params`` and ``flops``;
        params, flops, memory_kb: the layers' sums;
        model_params: ``sum(p.numel() for p in model.parameters())``, to compare with ``params`` (they differ
            when the model holds parameters in modules not counted here, e.g. batchnorm).
    """
    first = next(model.parameters(), None)
    if dtype is None:
        dtype = first.dtype if first is not None else torch.float32
    if device is None:
        device = first.device if first is not None else torch.device("cpu")
    names = {module: name for name, module in model.named_modules()}
    seen, layers = set(), []

    def hook(module, inputs, out):
        inp = inputs[0]
        shape = tuple(out.shape[1:])
        if module in seen:
            params = 0
        else:
            seen.add(module)
            params = sum(p.numel() for p in module.parameters(recurse=False))
        if len(shape) == 3:
            size_out = shape[1] if shape[1] == shape[2] else shape[1:]
        else:
            size_out = None
        element = bytes_per_element if bytes_per_element is not None else out.element_size()
        per_example = out.numel() // out.shape[0]
        layers.append({
            "name": names.get(module, type(module).__name__),
            "kind": _kind(module),
            "out_shape": shape,
            "c_out": shape[0],
            "size_out": size_out,
            "memory_kb": per_example * element / 1024,
            "params": int(params),
            "flops": int(_flops(module, inp, out)),
        })

    handles = [module.register_forward_hook(hook) for module in model.modules() if isinstance(module, COUNTED)]
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return {
        "layers": layers,
        "params": sum(layer["params"] for layer in layers),
        "flops": sum(layer["flops"] for layer in layers),
        "memory_kb": sum(layer["memory_kb"] for layer in layers),
        "model_params": sum(p.numel() for p in model.parameters()),
    }
