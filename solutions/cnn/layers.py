"""Layers of a convolutional network, forward and backward, in numpy.

Every forward function takes its inputs and returns ``(out, cache)``: ``out`` is the layer's output and
``cache`` holds whatever the backward pass will need. Every backward function takes the upstream gradient
``dout`` (the gradient of the loss with respect to ``out``, same shape as ``out``) and that ``cache``, and
returns the gradients with respect to the forward's inputs, each of the same shape as its input.

Conventions (as in the lectures and in every deep learning library):

* images are ``x`` of shape ``(N, C, H, W)``: N examples, C channels, height H, width W;
* convolution is cross-correlation: the kernel is *not* flipped;
* output sizes use floor division, ``H' = 1 + (H + 2*pad - HH) // stride``, as PyTorch does; padding is zeros
  on all four sides;
* inputs are float64 and outputs must be float64;
* a function leaves its array arguments as it found them (``x``, ``w``, ``b``, ``dout``, ``gamma``, ``beta``
  and the arrays inside the cache it is handed): the caller's other layers still hold those arrays, so a
  layer that edits them in place (``x -= mu``) corrupts the whole network's backward pass. Compute on a
  copy (``xc = x - mu``). The one exception is ``bn_param``, whose running statistics batchnorm updates.

You may use any numpy operation (``np.pad``, slicing, ``reshape``, ``einsum``, ``tensordot``,
``sliding_window_view``, the 1-D ``np.convolve`` and ``np.correlate``...). You may not use torch, tensorflow,
jax, scipy.signal or scipy.ndimage: a function that does scores zero.

Check each backward with ``gradcheck.eval_numerical_gradient_array`` before you move on.
"""
import numpy as np


# ----------------------------------------------------------------------------------------------------------
# Given: affine and ReLU layers (complete, not graded).
# ----------------------------------------------------------------------------------------------------------

def affine_forward(x, w, b):
    """Fully connected layer: ``out = x.reshape(N, D) @ w + b``.

    Shapes: x (N, d_1, ..., d_k) with D = d_1 * ... * d_k; w (D, M); b (M,); out (N, M).
    Cache: (x, w, b).
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward pass of ``affine_forward``. dout (N, M). Returns (dx, dw, db) shaped like x, w, b."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit, elementwise: ``out = max(0, x)``. Any shape. Cache: x."""
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    """Backward pass of ``relu_forward``: the gradient flows where ``x > 0``. Returns dx shaped like x."""
    x = cache
    return dout * (x > 0)


# ----------------------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------------------

def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer (cross-correlation, no kernel flip).

    Shapes:
        x: (N, C, H, W) input images.
        w: (F, C, HH, WW) F filters, each spanning all C input channels.
        b: (F,) one bias per filter.
        conv_param: {"stride": S, "pad": P}. Zero padding of P pixels on all four sides.
        out: (N, F, H', W') with H' = 1 + (H + 2P - HH) // S and W' = 1 + (W + 2P - WW) // S.

    Formula, with xp the zero-padded input:
        out[n, f, i, j] = b[f] + sum_{c, k, l} xp[n, c, i*S + k, j*S + l] * w[f, c, k, l]

    Cache: (x, w, b, conv_param).

    Hint: pad once with ``np.pad``; then loop over the output positions (i, j). For each position, the window
    ``xp[:, :, i*S:i*S+HH, j*S:j*S+WW]`` of shape (N, C, HH, WW) meets every filter at once: one
    ``np.tensordot`` (or ``einsum``) over the axes (C, HH, WW) gives all N x F outputs of that position.
    """
    # BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    S, P = conv_param["stride"], conv_param["pad"]
    H_out = 1 + (H + 2 * P - HH) // S
    W_out = 1 + (W + 2 * P - WW) // S
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    out = np.empty((N, F, H_out, W_out), dtype=np.result_type(x, w))
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, :, i * S:i * S + HH, j * S:j * S + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    out += b.reshape(1, F, 1, 1)
    # END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer.

    Inputs:
        dout: (N, F, H', W') upstream gradient.
        cache: (x, w, b, conv_param) as stored by ``conv_forward_naive``.

    Returns (dx, dw, db), shaped like x (N, C, H, W), w (F, C, HH, WW) and b (F,).

    Formulas (the lecture's derivation: every output position used one window of the input and the whole
    kernel, so each one sends gradient back to both):
        db[f] = sum_{n, i, j} dout[n, f, i, j]
        dw[f, c, k, l] = sum_{n, i, j} dout[n, f, i, j] * xp[n, c, i*S + k, j*S + l]
        dxp[n, c, i*S + k, j*S + l] += sum_f dout[n, f, i, j] * w[f, c, k, l]
    and dx is dxp with the padding cut off.

    Hint: loop over the output positions as in the forward pass. Windows overlap when S < HH, so *add*
    into dxp (``+=``), never assign. Use the stride S when you locate each window.
    """
    # BEGIN SOLUTION
    x, w, b, conv_param = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    S, P = conv_param["stride"], conv_param["pad"]
    _, _, H_out, W_out = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, :, i * S:i * S + HH, j * S:j * S + WW]
            d = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(d, window, axes=([0], [0]))
            dxp[:, :, i * S:i * S + HH, j * S:j * S + WW] += np.tensordot(d, w, axes=([1], [0]))
    dx = dxp[:, :, P:P + H, P:P + W]
    # END SOLUTION
    return dx, dw, db


# ----------------------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------------------

def max_pool_forward_naive(x, pool_param):
    """Forward pass of max pooling (no padding).

    Shapes:
        x: (N, C, H, W).
        pool_param: {"pool_height": PH, "pool_width": PW, "stride": S}.
        out: (N, C, H', W') with H' = 1 + (H - PH) // S and W' = 1 + (W - PW) // S.

    Formula:
        out[n, c, i, j] = max_{k < PH, l < PW} x[n, c, i*S + k, j*S + l]

    Cache: (x, pool_param, argmax), where argmax (N, C, H', W') is the position of each window's maximum,
    flattened in row-major order within the window (``k * PW + l``).

    Hint: reshape each window to (N, C, PH * PW); ``np.argmax`` along the last axis returns the *first*
    maximum, the same one PyTorch routes a tie's gradient to. Remember it in the cache.
    """
    # BEGIN SOLUTION
    N, C, H, W = x.shape
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    H_out = 1 + (H - PH) // S
    W_out = 1 + (W - PW) // S
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    argmax = np.empty((N, C, H_out, W_out), dtype=np.int64)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * S:i * S + PH, j * S:j * S + PW].reshape(N, C, PH * PW)
            argmax[:, :, i, j] = window.argmax(axis=2)
            out[:, :, i, j] = window.max(axis=2)
    cache = (x, pool_param, argmax)
    # END SOLUTION
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling.

    Inputs: dout (N, C, H', W'); cache as stored by ``max_pool_forward_naive``.
    Returns dx, shaped like x (N, C, H, W).

    Each window's gradient goes, whole, to the input that was its maximum (to the first one in row-major
    order where several are equal); every other input of the window gets nothing from it.

    Hint: when S < PH (or S < PW) windows overlap and one input can be the maximum of several windows:
    its gradient is the *sum* of theirs, so accumulate with ``+=``.
    """
    # BEGIN SOLUTION
    x, pool_param, argmax = cache
    N, C, H, W = x.shape
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(H_out):
        for j in range(W_out):
            k, l = np.divmod(argmax[:, :, i, j], PW)
            # Within one window position each (n, c) pair is distinct, so fancy-index += is safe here.
            dx[n_idx, c_idx, i * S + k, j * S + l] += dout[:, :, i, j]
    # END SOLUTION
    return dx


def avg_pool_forward_naive(x, pool_param):
    """Forward pass of average pooling (no padding).

    Shapes: as ``max_pool_forward_naive``: x (N, C, H, W) -> out (N, C, H', W').

    Formula:
        out[n, c, i, j] = 1 / (PH * PW) * sum_{k < PH, l < PW} x[n, c, i*S + k, j*S + l]

    Cache: (x, pool_param).

    Hint: loop over the output positions and take ``mean`` over the last two axes of each window.
    """
    # BEGIN SOLUTION
    N, C, H, W = x.shape
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    H_out = 1 + (H - PH) // S
    W_out = 1 + (W - PW) // S
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * S:i * S + PH, j * S:j * S + PW].mean(axis=(2, 3))
    # END SOLUTION
    cache = (x, pool_param)
    return out, cache


def avg_pool_backward_naive(dout, cache):
    """Backward pass of average pooling.

    Inputs: dout (N, C, H', W'); cache (x, pool_param). Returns dx shaped like x (N, C, H, W).

    Each input of a window receives ``dout[n, c, i, j] / (PH * PW)`` from that window.

    Hint: overlapping windows add up, as in max pooling.
    """
    # BEGIN SOLUTION
    x, pool_param = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            dx[:, :, i * S:i * S + PH, j * S:j * S + PW] += dout[:, :, i, j, None, None] / (PH * PW)
    # END SOLUTION
    return dx


# ----------------------------------------------------------------------------------------------------------
# Batch normalization
# ----------------------------------------------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization over a batch of vectors.

    Shapes: x (N, D); gamma, beta (D,); out (N, D).

    bn_param keys:
        mode: "train" or "test" (required).
        eps: added to the variance for numerical stability (default 1e-5).
        momentum: weight of the old running statistics (default 0.9).
        running_mean, running_var: arrays of shape (D,) (zeros when absent).

    Train mode, per feature j, with the batch mean and the *biased* batch variance (divide by N):
        mu = mean(x, axis=0),  var = mean((x - mu)**2, axis=0)
        xhat = (x - mu) / sqrt(var + eps),  out = gamma * xhat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var  = momentum * running_var  + (1 - momentum) * var
    Test mode: the same normalisation with running_mean and running_var in place of mu and var; the running
    statistics stay as they are. (During testing batchnorm is a fixed linear map.)

    After the call ``bn_param["running_mean"]`` and ``bn_param["running_var"]`` hold the updated statistics.

    Note: PyTorch's ``momentum`` is the complement of this one (its 0.1 is our 0.9) and its running variance
    is unbiased (divides by N - 1); outputs and gradients are the same.

    Cache (train mode): (xc, std, xhat, gamma), with xc = x - mu and std = sqrt(var + eps). Keep this
    layout: then the grader can judge your backward on its own, even on a case where your forward is wrong.
    Hint: write the forward as a chain of small steps (centre, square, mean, sqrt, invert, scale) and keep
    the intermediate values: the backward pass walks the same chain in reverse.
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        # BEGIN SOLUTION
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc ** 2).mean(axis=0)
        std = np.sqrt(var + eps)
        xhat = xc / std
        out = gamma * xhat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (xc, std, xhat, gamma)
        # END SOLUTION
    elif mode == "test":
        # BEGIN SOLUTION
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * xhat + beta
        cache = None
        # END SOLUTION
    else:
        raise ValueError(f'bn_param["mode"] must be "train" or "test", got {mode!r}')

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization (train mode), step by step through the computational graph.

    Inputs: dout (N, D); cache from ``batchnorm_forward``.
    Returns (dx, dgamma, dbeta), shaped (N, D), (D,), (D,).

    Walk the forward's chain in reverse: dbeta = sum_n dout; dgamma = sum_n dout * xhat; dxhat = dout * gamma;
    then through the division by std, the sqrt, the variance's mean and square, and the centring. x reaches
    the output along three paths (through x - mu directly, through mu, and through var): add them.

    Hint: draw the graph on paper, one node per line of your forward pass.
    """
    # BEGIN SOLUTION
    xc, std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    # xhat = xc * istd
    istd = 1.0 / std
    dxc = dxhat * istd
    distd = (dxhat * xc).sum(axis=0)
    # istd = 1 / std, std = sqrt(var + eps)
    dstd = -distd / std ** 2
    dvar = dstd / (2.0 * std)
    # var = mean(xc ** 2)
    dxc += 2.0 * xc * dvar / N
    # xc = x - mu, mu = mean(x)
    dx = dxc - dxc.sum(axis=0) / N
    # END SOLUTION
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass of batch normalization from the simplified closed form.

    Same inputs and outputs as ``batchnorm_backward``. Working the chain rule out on paper gives, per feature,
        dx = gamma / (N * sqrt(var + eps)) * (N * dout - sum_n dout - xhat * sum_n (dout * xhat))
    Implement it in a few lines; it should agree with ``batchnorm_backward`` to about 1e-12.
    """
    # BEGIN SOLUTION
    xc, std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma / (N * std) * (N * dout - dbeta - xhat * dgamma)
    # END SOLUTION
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of spatial batch normalization (BatchNorm2d): one mean and variance per channel.

    Shapes: x (N, C, H, W); gamma, beta (C,); out (N, C, H, W). bn_param as in ``batchnorm_forward``, with
    running statistics of shape (C,).

    Each channel c is normalised with the statistics of all N * H * W values it takes in the batch.
    Cache: the cache of ``batchnorm_forward`` on the (N * H * W, C) view below.

    Hint: move the channel axis last, ``x.transpose(0, 2, 3, 1).reshape(-1, C)``, call
    ``batchnorm_forward``, and undo the reshape and the transpose. Reshaping to (-1, C) *without* the
    transpose mixes channels and positions: it gives the right shape and the wrong numbers.
    """
    # BEGIN SOLUTION
    N, C, H, W = x.shape
    flat, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    out = flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    # END SOLUTION
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalization.

    Inputs: dout (N, C, H, W); cache from ``spatial_batchnorm_forward``.
    Returns (dx, dgamma, dbeta), shaped (N, C, H, W), (C,), (C,).

    Hint: the same transpose and reshape as the forward pass, then ``batchnorm_backward``.
    """
    # BEGIN SOLUTION
    N, C, H, W = dout.shape
    dflat, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    dx = dflat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    # END SOLUTION
    return dx, dgamma, dbeta
