"""PyTorch (float64) references for the numpy layers: outputs and gradients by autograd.

Each function takes numpy arrays and the layer's parameters as the student functions do and returns numpy
arrays. ``*_backward`` returns the gradients of ``sum(out * dout)``. Batchnorm's running statistics are not
here: they follow the course's closed form (see ``batchnorm_running_stats``), not PyTorch's convention.
"""
import torch
import torch.nn.functional as F


def _grads(fn, arrays, dout):
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    # The same gradients as out.backward(dout), to the bit (the product's gradient is dout times 1.0), without
    # what a gradient given to backward() costs the first time: torch imports sympy for it (0.26 s of CPU).
    (fn(*tensors) * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    return [t.grad.numpy() for t in tensors]


def _out(fn, arrays):
    with torch.no_grad():
        return fn(*[torch.tensor(a, dtype=torch.float64) for a in arrays]).numpy()


def _conv(stride, pad):
    return lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad)


def conv_forward(x, w, b, stride, pad):
    return _out(_conv(stride, pad), [x, w, b])


def conv_backward(x, w, b, stride, pad, dout):
    """(dx, dw, db)."""
    return tuple(_grads(_conv(stride, pad), [x, w, b], dout))


def _pool(kind, pool_height, pool_width, stride):
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    return lambda x: pool(x, (pool_height, pool_width), stride=stride)


def pool_forward(kind, x, pool_height, pool_width, stride):
    """``kind`` is "max" or "avg". PyTorch routes a tie's gradient to the first maximum, as the contract does."""
    return _out(_pool(kind, pool_height, pool_width, stride), [x])


def pool_backward(kind, x, pool_height, pool_width, stride, dout):
    return _grads(_pool(kind, pool_height, pool_width, stride), [x], dout)[0]


def _batchnorm(eps):
    def fn(x, gamma, beta):
        # F.batch_norm wants (N, C, ...) with statistics per C: (N, D) and (N, C, H, W) both fit.
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
    return fn


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Train-mode output for x (N, D) or (N, C, H, W), statistics per feature / channel."""
    return _out(_batchnorm(eps), [x, gamma, beta])


def batchnorm_backward(x, gamma, beta, dout, eps=1e-5):
    """(dx, dgamma, dbeta) of the train-mode forward."""
    return tuple(_grads(_batchnorm(eps), [x, gamma, beta], dout))


def batchnorm_test_forward(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """Test-mode output: normalised with the given running statistics."""
    def fn(x, gamma, beta, mean, var):
        return F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
    return _out(fn, [x, gamma, beta, running_mean, running_var])


def batchnorm_running_stats(x, running_mean, running_var, momentum=0.9):
    """The course's closed form: ``momentum * old + (1 - momentum) * batch``, biased batch variance.

    Statistics per axis 1 (features of (N, D), channels of (N, C, H, W)).
    """
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    return (momentum * running_mean + (1 - momentum) * mean,
            momentum * running_var + (1 - momentum) * var)
