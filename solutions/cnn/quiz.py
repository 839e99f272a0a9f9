"""What a layer costs: output shape, memory, parameters and FLOPs, by hand, as in the lecture's AlexNet table.

Each calculator takes a layer's configuration (the columns "Input size" and "Layer" of the lecture's table) and
returns the columns "Output size", "memory (KB)", "params" and "flop" as a dict::

    {"c_out": ..., "size_out": ..., "memory_kb": ..., "params": ..., "flops": ...}

Conventions (the lecture's):

* inputs are square: ``size`` is both the height and the width, and so is ``kernel``;
* output sizes use floor division, as PyTorch does: ``W' = (W - K + 2P) // S + 1``. When ``S`` does not divide
  ``W - K + 2P``, the last window that would stick out past the (padded) edge is dropped;
* a "flop" is one multiply-add (a multiply and an add count once, together);
* memory is the layer's *output* (the activations it stores, for one image), at 4 bytes an element (float32), in
  KB of 1024 bytes: ``memory_kb = C' * H' * W' * 4 / 1024``. Return it as a float, unrounded (pool1 is 182.25);
* ``params`` and ``flops`` are exact ints (the table prints them rounded, in thousands and in millions).

Errata in the lecture slides (the formulas on the slides are right; some of the printed numbers are not):

* AlexNet conv4 costs ``(256 * 13 * 13) * (384 * 3 * 3) = 149,520,384`` multiply-adds, 149.5 MFLOP; the table
  prints 145.
* A fully connected layer has ``C_in * C_out`` weights and ``C_out`` biases. For fc6 that is
  ``9216 * 4096 + 4096 = 37,752,832`` parameters. The table's params column for fc6, fc7 and fc8 (37,749k,
  16,777k, 4,096k) counts the weights alone, and the formula slide's sum, 37,725,832, is an arithmetic slip.
  Your ``fc_layer`` counts the bias (37,753k, 16,781k, 4,097k when rounded).
* (Initialisation, for initializers.py.) The MSRA / Kaiming slide writes ``std = 2 / sqrt(Din)`` and its code
  divides by ``np.sqrt(Din)`` alone; the right value for ReLU networks is ``std = sqrt(2 / Din)``.

Run ``pytest tests/test_quiz.py`` to compare your numbers with the lecture's.
"""

BYTES_PER_ELEMENT = 4   # float32
BYTES_PER_KB = 1024

# The lecture's AlexNet (227 x 227 RGB input), one entry per row of its table: (name, kind, configuration).
# Each layer's input is the previous layer's output; the first one sees 3 channels of 227 x 227.
ALEXNET_INPUT = {"c_in": 3, "size": 227}
ALEXNET_LAYERS = [
    ("conv1", "conv", {"filters": 64, "kernel": 11, "stride": 4, "pad": 2}),
    ("pool1", "pool", {"kernel": 3, "stride": 2}),
    ("conv2", "conv", {"filters": 192, "kernel": 5, "stride": 1, "pad": 2}),
    ("pool2", "pool", {"kernel": 3, "stride": 2}),
    ("conv3", "conv", {"filters": 384, "kernel": 3, "stride": 1, "pad": 1}),
    ("conv4", "conv", {"filters": 256, "kernel": 3, "stride": 1, "pad": 1}),
    ("conv5", "conv", {"filters": 256, "kernel": 3, "stride": 1, "pad": 1}),
    ("pool5", "pool", {"kernel": 3, "stride": 2}),
    ("flatten", "flatten", {}),
    ("fc6", "fc", {"d_out": 4096}),
    ("fc7", "fc", {"d_out": 4096}),
    ("fc8", "fc", {"d_out": 1000}),
]


def conv_output_size(size, kernel, stride=1, pad=0):
    """Height (= width) of a convolution's output.

    Arguments: the input's height ``size`` (W), the kernel's height ``kernel`` (K), ``stride`` (S) and the zero
    padding ``pad`` (P) added on each side.

    Formula: ``W' = (W - K + 2P) // S + 1`` (floor division).

    Returns an int. Example (AlexNet conv1): ``conv_output_size(227, 11, stride=4, pad=2) == 56``.

    Hint: use ``//``, not ``/``: ``(56 - 3) / 2 + 1`` is 27.5, and the answer is 27.
    """
    # BEGIN SOLUTION
    return (size - kernel + 2 * pad) // stride + 1
    # END SOLUTION


def pool_output_size(size, kernel, stride, pad=0):
    """Height (= width) of a pooling layer's output.

    Same arithmetic as a convolution: ``W' = (W - K + 2P) // S + 1``. Pooling windows may overlap (AlexNet's
    3x3 windows at stride 2) or tile the input (VGG's 2x2 at stride 2).

    Returns an int. Example (AlexNet pool1): ``pool_output_size(56, 3, 2) == 27``.
    """
    # BEGIN SOLUTION
    return (size - kernel + 2 * pad) // stride + 1
    # END SOLUTION


def conv_layer(c_in, size, filters, kernel, stride=1, pad=0, bias=True):
    """The table row of a convolution with ``filters`` kernels of ``kernel x kernel`` over ``c_in x size x size``.

    Returns a dict:
        c_out: the number of output channels, one per filter.
        size_out: the output's height (= width), ``conv_output_size(...)``.
        memory_kb: ``c_out * size_out**2 * 4 / 1024`` (float, unrounded).
        params: the weights, ``filters * c_in * kernel * kernel``, plus one bias per filter when ``bias``.
        flops: multiply-adds: (number of output elements) * (multiply-adds per output element); each output
            element is a dot product over one ``c_in x kernel x kernel`` window.

    Example (AlexNet conv1): ``conv_layer(3, 227, 64, 11, stride=4, pad=2)`` has c_out 64, size_out 56,
    memory_kb 784.0, params 23,296 and flops 72,855,552.

    Hint: the bias adds parameters but (by the lecture's count) no flops.
    """
    # BEGIN SOLUTION
    size_out = conv_output_size(size, kernel, stride, pad)
    outputs = filters * size_out * size_out
    weights = filters * c_in * kernel * kernel
    return {
        "c_out": filters,
        "size_out": size_out,
        "memory_kb": outputs * BYTES_PER_ELEMENT / BYTES_PER_KB,
        "params": weights + (filters if bias else 0),
        "flops": outputs * c_in * kernel * kernel,
    }
    # END SOLUTION


def pool_layer(c_in, size, kernel, stride, pad=0):
    """The table row of a ``kernel x kernel`` pooling layer (max or average) over ``c_in x size x size``.

    Returns a dict with the same keys as ``conv_layer``:
        c_out: pooling works on each channel alone, so ``c_out == c_in``.
        size_out: ``pool_output_size(...)``.
        memory_kb: ``c_out * size_out**2 * 4 / 1024`` (float, unrounded).
        params: 0 (nothing to learn).
        flops: (number of output elements) * ``kernel * kernel``, as the lecture counts a window's cost.

    Example (AlexNet pool1): ``pool_layer(64, 56, 3, 2)`` has size_out 27, memory_kb 182.25 and flops 419,904.
    """
    # BEGIN SOLUTION
    size_out = pool_output_size(size, kernel, stride, pad)
    outputs = c_in * size_out * size_out
    return {
        "c_out": c_in,
        "size_out": size_out,
        "memory_kb": outputs * BYTES_PER_ELEMENT / BYTES_PER_KB,
        "params": 0,
        "flops": outputs * kernel * kernel,
    }
    # END SOLUTION


def fc_layer(d_in, d_out):
    """The table row of a fully connected layer from ``d_in`` inputs to ``d_out`` outputs.

    Returns a dict with the same keys as ``conv_layer``:
        c_out: ``d_out``.
        size_out: None (the output is a vector, it has no height).
        memory_kb: ``d_out * 4 / 1024`` (float, unrounded).
        params: ``d_in * d_out`` weights plus ``d_out`` biases.
        flops: ``d_in * d_out`` multiply-adds.

    Example (AlexNet fc6): ``fc_layer(9216, 4096)`` has memory_kb 16.0, params 37,752,832 and flops 37,748,736
    (see the errata in the module docstring).
    """
    # BEGIN SOLUTION
    return {
        "c_out": d_out,
        "size_out": None,
        "memory_kb": d_out * BYTES_PER_ELEMENT / BYTES_PER_KB,
        "params": d_in * d_out + d_out,
        "flops": d_in * d_out,
    }
    # END SOLUTION


def alexnet_table():
    """The lecture's AlexNet table, computed: one dict per row of ``ALEXNET_LAYERS``, in order.

    Each row is the dict your calculator returns for that layer, with one more key, ``"name"`` ("conv1", ...).
    The first layer sees ``ALEXNET_INPUT``; every later layer sees the previous row's output (``c_out`` channels
    of ``size_out x size_out``).

    The "flatten" row reshapes ``C x H x W`` into one vector of ``C * H * W`` elements: its ``c_out`` is that
    length (9216), ``size_out`` None, ``memory_kb`` its size in KB (36.0), no params and no flops. The fc layers
    after it take ``d_in`` from the previous row's ``c_out``.

    Values stay exact (unrounded). Rounded, they match the lecture's table except for its two errata (module
    docstring): conv4's 149.5 MFLOP and the fc rows' bias parameters.

    Hint: loop over ``ALEXNET_LAYERS``, keeping the current ``(c, size)``; build each row with ``dict(name=...,
    **calculator(...))``.
    """
    # BEGIN SOLUTION
    c, size = ALEXNET_INPUT["c_in"], ALEXNET_INPUT["size"]
    rows = []
    for name, kind, config in ALEXNET_LAYERS:
        if kind == "conv":
            row = conv_layer(c, size, **config)
        elif kind == "pool":
            row = pool_layer(c, size, **config)
        elif kind == "flatten":
            elements = c * size * size
            row = {"c_out": elements, "size_out": None,
                   "memory_kb": elements * BYTES_PER_ELEMENT / BYTES_PER_KB, "params": 0, "flops": 0}
        else:   # "fc"
            row = fc_layer(c, **config)
        rows.append({"name": name, **row})
        c, size = row["c_out"], row["size_out"]
    return rows
    # END SOLUTION
