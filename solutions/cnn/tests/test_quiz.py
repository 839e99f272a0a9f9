"""Public tests for quiz.py: the lectures' own numbers (AlexNet's table, the VGG and GoogLeNet slides).

Every expected value is written out here as the lecture computes it; run ``pytest tests/test_quiz.py``.
"""
import math
import numbers

import quiz

KEYS = ("c_out", "size_out", "memory_kb", "params", "flops")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_exact(case, got, expected):
    """``got`` is a calculator's dict; ``expected`` maps some of KEYS to exact values."""
    assert isinstance(got, dict), f"{case}: expected a dict with keys {KEYS}, got {type(got).__name__}"
    missing = [key for key in KEYS if key not in got]
    assert not missing, f"{case}: the dict lacks the keys {missing} (it has {sorted(got)})"
    for key, want in expected.items():
        value = got[key]
        if want is None:
            assert value is None, f"{case}: {key} expected None, got {value!r}"
        elif key == "memory_kb":
            assert isinstance(value, numbers.Real) and math.isclose(value, want, rel_tol=1e-12), (
                f"{case}: memory_kb expected {want} (C' * H' * W' * 4 / 1024, unrounded), got {value!r}")
        else:
            assert _is_int(value), f"{case}: {key} expected the int {want}, got {value!r} ({type(value).__name__})"
            assert value == want, f"{case}: {key} expected {want:,}, got {value:,}"


def _round(x):
    """Round half up, as the lecture's table does (253.5 KB prints as 254)."""
    return math.floor(x + 0.5)


def test_conv_output_size():
    # (size, kernel, stride, pad) -> W' = (W - K + 2P) // S + 1
    cases = [
        ((7, 3, 1, 0), 5, "7x7 input, 3x3 filter, stride 1: (7 - 3) / 1 + 1"),
        ((7, 3, 2, 0), 3, "7x7 input, 3x3 filter, stride 2: (7 - 3) / 2 + 1"),
        ((7, 3, 3, 0), 2, "7x7 input, 3x3 filter, stride 3: (7 - 3) / 3 + 1 = 2.33, floored"),
        ((7, 3, 1, 1), 7, "7x7 input, 3x3 filter, stride 1, pad 1 keeps the size"),
        ((32, 5, 1, 2), 32, "32x32 input, 5x5 filter, stride 1, pad 2"),
        ((227, 11, 4, 2), 56, "AlexNet conv1: (227 - 11 + 2*2) / 4 + 1 = 220/4 + 1"),
        ((27, 5, 1, 2), 27, "AlexNet conv2"),
        ((13, 3, 1, 1), 13, "AlexNet conv3"),
        ((224, 7, 2, 3), 112, "GoogLeNet stem conv: (224 - 7 + 6) / 2 + 1 = 112.5, floored"),
    ]
    for (size, kernel, stride, pad), want, case in cases:
        got = quiz.conv_output_size(size, kernel, stride=stride, pad=pad)
        assert _is_int(got), f"conv_output_size, {case}: expected the int {want}, got {got!r} (use floor division //)"
        assert got == want, f"conv_output_size, {case}: expected {want}, got {got}"
    got = quiz.conv_output_size(32, 3)
    assert got == 30, f"conv_output_size(32, 3) with the defaults stride=1, pad=0: expected 30, got {got!r}"


def test_pool_output_size():
    # (size, kernel, stride, pad) -> W' = (W - K + 2P) // S + 1
    cases = [
        ((4, 2, 2, 0), 2, "4x4 input, 2x2 max pooling, stride 2"),
        ((56, 3, 2, 0), 27, "AlexNet pool1: floor((56 - 3) / 2 + 1) = floor(27.5)"),
        ((27, 3, 2, 0), 13, "AlexNet pool2"),
        ((13, 3, 2, 0), 6, "AlexNet pool5"),
        ((224, 2, 2, 0), 112, "VGG pool, 2x2 stride 2"),
        ((112, 3, 2, 1), 56, "GoogLeNet stem max-pool, 3x3 stride 2 pad 1"),
        ((56, 3, 2, 1), 28, "GoogLeNet stem max-pool, 3x3 stride 2 pad 1"),
        ((7, 7, 1, 0), 1, "GoogLeNet avg-pool, 7x7 over 7x7"),
    ]
    for (size, kernel, stride, pad), want, case in cases:
        got = quiz.pool_output_size(size, kernel, stride, pad=pad)
        assert _is_int(got), f"pool_output_size, {case}: expected the int {want}, got {got!r} (use floor division //)"
        assert got == want, f"pool_output_size, {case}: expected {want}, got {got}"
    got = quiz.pool_output_size(56, 3, 2)
    assert got == 27, f"pool_output_size(56, 3, 2) with the default pad=0: expected 27, got {got!r}"


def test_conv_layer():
    C, H, W = 64, 28, 28   # any sizes will do for the VGG slides' formulas
    cases = [
        ("AlexNet conv1, 64 11x11 filters, stride 4, pad 2, over 3x227x227",
         dict(c_in=3, size=227, filters=64, kernel=11, stride=4, pad=2),
         dict(c_out=64, size_out=56, memory_kb=64 * 56 * 56 * 4 / 1024,            # 784
              params=64 * 3 * 11 * 11 + 64,                                        # 23,296
              flops=(64 * 56 * 56) * (3 * 11 * 11))),                              # 72,855,552
        ("AlexNet conv4, 256 3x3 filters, pad 1, over 384x13x13 (the table's 145 MFLOP is an erratum)",
         dict(c_in=384, size=13, filters=256, kernel=3, stride=1, pad=1),
         dict(c_out=256, size_out=13, memory_kb=169.0, params=256 * 384 * 9 + 256,
              flops=(256 * 13 * 13) * (384 * 3 * 3))),                             # 149,520,384
        ("10 5x5 filters, stride 1, pad 2, over 3x32x32",
         dict(c_in=3, size=32, filters=10, kernel=5, stride=1, pad=2),
         dict(c_out=10, size_out=32, params=10 * (5 * 5 * 3 + 1))),                # 760
        ("GoogLeNet stem conv, 64 7x7 filters, stride 2, pad 3, over 3x224x224",
         dict(c_in=3, size=224, filters=64, kernel=7, stride=2, pad=3),
         dict(c_out=64, size_out=112, memory_kb=3136.0, params=64 * 3 * 7 * 7 + 64,  # 9,472
              flops=(64 * 112 * 112) * (3 * 7 * 7))),                                # 118,013,952
        ("VGG: one Conv(5x5, C -> C), pad 2, no bias",
         dict(c_in=C, size=H, filters=C, kernel=5, stride=1, pad=2, bias=False),
         dict(c_out=C, size_out=H, params=25 * C ** 2, flops=25 * C ** 2 * H * W)),
        ("VGG: one Conv(3x3, C -> C), pad 1, no bias (two of them: 18C^2 params, 18C^2HW flops)",
         dict(c_in=C, size=H, filters=C, kernel=3, stride=1, pad=1, bias=False),
         dict(c_out=C, size_out=H, params=9 * C ** 2, flops=9 * C ** 2 * H * W)),
        ("VGG: Conv(3x3, C -> C) over C x 2H x 2W, no bias",
         dict(c_in=C, size=2 * H, filters=C, kernel=3, stride=1, pad=1, bias=False),
         dict(c_out=C, size_out=2 * H, memory_kb=4 * H * W * C * 4 / 1024, params=9 * C ** 2,
              flops=36 * H * W * C ** 2)),
        ("VGG: Conv(3x3, 2C -> 2C) over 2C x H x W, no bias",
         dict(c_in=2 * C, size=H, filters=2 * C, kernel=3, stride=1, pad=1, bias=False),
         dict(c_out=2 * C, size_out=H, memory_kb=2 * H * W * C * 4 / 1024, params=36 * C ** 2,
              flops=36 * H * W * C ** 2)),
    ]
    for case, args, expected in cases:
        _check_exact(f"conv_layer({args}), {case}", quiz.conv_layer(**args), expected)
    got = quiz.conv_layer(3, 32, 10, 5)
    _check_exact("conv_layer(3, 32, 10, 5) with the defaults stride=1, pad=0, bias=True", got,
                 dict(c_out=10, size_out=28, params=760, flops=10 * 28 * 28 * 75))


def test_pool_layer():
    cases = [
        ("AlexNet pool1, 3x3 stride 2 over 64x56x56",
         dict(c_in=64, size=56, kernel=3, stride=2),
         dict(c_out=64, size_out=27, memory_kb=182.25, params=0,
              flops=(64 * 27 * 27) * (3 * 3))),                                    # 419,904
        ("AlexNet pool2, 3x3 stride 2 over 192x27x27",
         dict(c_in=192, size=27, kernel=3, stride=2),
         dict(c_out=192, size_out=13, memory_kb=126.75, params=0, flops=192 * 13 * 13 * 9)),
        ("AlexNet pool5, 3x3 stride 2 over 256x13x13",
         dict(c_in=256, size=13, kernel=3, stride=2),
         dict(c_out=256, size_out=6, memory_kb=36.0, params=0, flops=256 * 6 * 6 * 9)),
        ("GoogLeNet stem max-pool, 3x3 stride 2 pad 1 over 64x112x112",
         dict(c_in=64, size=112, kernel=3, stride=2, pad=1),
         dict(c_out=64, size_out=56, memory_kb=784.0, params=0, flops=64 * 56 * 56 * 9)),
        ("GoogLeNet stem max-pool, 3x3 stride 2 pad 1 over 192x56x56",
         dict(c_in=192, size=56, kernel=3, stride=2, pad=1),
         dict(c_out=192, size_out=28, memory_kb=588.0, params=0, flops=192 * 28 * 28 * 9)),
        ("GoogLeNet avg-pool, 7x7 stride 1 over 1024x7x7",
         dict(c_in=1024, size=7, kernel=7, stride=1),
         dict(c_out=1024, size_out=1, memory_kb=4.0, params=0, flops=1024 * 49)),
        ("VGG max pool, 2x2 stride 2 over 64x224x224",
         dict(c_in=64, size=224, kernel=2, stride=2),
         dict(c_out=64, size_out=112, memory_kb=64 * 112 * 112 * 4 / 1024, params=0, flops=64 * 112 * 112 * 4)),
    ]
    for case, args, expected in cases:
        _check_exact(f"pool_layer({args}), {case}", quiz.pool_layer(**args), expected)


def test_fc_layer():
    cases = [
        ("AlexNet fc6, 9216 -> 4096 (the slides print 37,749k and 37,725,832: both errata)",
         (9216, 4096), dict(c_out=4096, size_out=None, memory_kb=16.0, params=9216 * 4096 + 4096,  # 37,752,832
                            flops=9216 * 4096)),                                                    # 37,748,736
        ("AlexNet fc7, 4096 -> 4096",
         (4096, 4096), dict(c_out=4096, size_out=None, memory_kb=16.0, params=4096 * 4096 + 4096,
                            flops=4096 * 4096)),
        ("AlexNet fc8, 4096 -> 1000",
         (4096, 1000), dict(c_out=1000, size_out=None, memory_kb=1000 * 4 / 1024, params=4096 * 1000 + 1000,
                            flops=4096 * 1000)),
        ("GoogLeNet fc, 1024 -> 1000",
         (1024, 1000), dict(c_out=1000, size_out=None, params=1024 * 1000 + 1000, flops=1024 * 1000)),
        ("VGG-16 fc6, 25088 -> 4096",
         (25088, 4096), dict(c_out=4096, size_out=None, memory_kb=16.0, params=25088 * 4096 + 4096,
                             flops=25088 * 4096)),
    ]
    for case, (d_in, d_out), expected in cases:
        _check_exact(f"fc_layer({d_in}, {d_out}), {case}", quiz.fc_layer(d_in, d_out), expected)


# The lecture's table, as printed: c_out, size_out, memory (KB), params (k), flop (M), rounded to integers;
# the two errata corrected (conv4: 150 MFLOP, not 145; fc params with the bias: 37,753k, 16,781k, 4,097k).
ALEXNET_ROUNDED = [
    ("conv1", 64, 56, 784, 23, 73),
    ("pool1", 64, 27, 182, 0, 0),
    ("conv2", 192, 27, 547, 307, 224),
    ("pool2", 192, 13, 127, 0, 0),
    ("conv3", 384, 13, 254, 664, 112),
    ("conv4", 256, 13, 169, 885, 150),
    ("conv5", 256, 13, 169, 590, 100),
    ("pool5", 256, 6, 36, 0, 0),
    ("flatten", 9216, None, 36, 0, 0),
    ("fc6", 4096, None, 16, 37_753, 38),
    ("fc7", 4096, None, 16, 16_781, 17),
    ("fc8", 1000, None, 4, 4_097, 4),
]


def test_alexnet_table():
    table = quiz.alexnet_table()
    assert isinstance(table, list), f"alexnet_table: expected a list of dicts, got {type(table).__name__}"
    names = [row.get("name") if isinstance(row, dict) else row for row in table]
    want_names = [row[0] for row in ALEXNET_ROUNDED]
    assert names == want_names, f"alexnet_table: expected the rows {want_names}, got {names}"
    for row, (name, c_out, size_out, memory, params_k, mflop) in zip(table, ALEXNET_ROUNDED):
        _check_exact(f"alexnet_table, row {name}", row, dict(c_out=c_out, size_out=size_out))
        got = (_round(row["memory_kb"]), _round(row["params"] / 1000), _round(row["flops"] / 1e6))
        want = (memory, params_k, mflop)
        assert got == want, (f"alexnet_table, row {name}: (memory KB, params k, MFLOP) rounded expected {want}, "
                             f"got {got} from {row}")
    rows = {row["name"]: row for row in table}
    exact = {
        "conv1": dict(memory_kb=784.0, params=23_296, flops=72_855_552),
        "pool1": dict(memory_kb=182.25, params=0, flops=419_904),
        "conv3": dict(memory_kb=253.5),
        "conv4": dict(flops=149_520_384),
        "flatten": dict(memory_kb=36.0, params=0, flops=0),
        "fc6": dict(params=37_752_832, flops=37_748_736),
        "fc8": dict(memory_kb=3.90625),
    }
    for name, expected in exact.items():
        _check_exact(f"alexnet_table, row {name} (exact)", rows[name], expected)
    total_params = sum(row["params"] for row in table)
    total_flops = sum(row["flops"] for row in table)
    assert total_params == 61_100_840, f"alexnet_table: total params expected 61,100,840 (61M), got {total_params:,}"
    assert _round(total_flops / 1e8) == 7, f"alexnet_table: total flops expected about 0.7 GFLOP, got {total_flops:,}"
