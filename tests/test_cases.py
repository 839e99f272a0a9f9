"""The layers' hidden cases (grader/cnn/cases.py): a fixed layout of categories, the same in every grade, that
covers every stratum of STRATA, with values drawn per seed that cannot hide a bug."""
import numpy as np
import pytest

from grader.cnn import cases

DRAWS = {
    "conv": cases.conv_cases,
    "pool": cases.pool_cases,
    "ties": lambda rng: cases.pool_cases(rng, ties=True),
    "batchnorm": cases.batchnorm_cases,
    "spatial_batchnorm": lambda rng: cases.batchnorm_cases(rng, spatial=True),
}
KIND = {"ties": "pool"}
SEEDS = range(100)


def draws(kind):
    return [DRAWS[kind](np.random.default_rng([seed, 1])) for seed in SEEDS]


@pytest.mark.parametrize("kind", list(DRAWS))
def test_every_seed_draws_the_same_categories_in_the_same_strata(kind):
    first, *others = draws(kind)
    for drawn in others:
        assert [c["category"] for c in drawn] == [c["category"] for c in first]
        assert [cases.strata(KIND.get(kind, kind), c) for c in drawn] == \
               [cases.strata(KIND.get(kind, kind), c) for c in first]


@pytest.mark.parametrize("kind", [k for k in DRAWS if k != "ties"])
def test_the_layout_covers_every_stratum(kind):
    covered = set().union(*(cases.strata(kind, case) for case in DRAWS[kind](np.random.default_rng(0))))
    assert set(cases.STRATA[kind]) <= covered, set(cases.STRATA[kind]) - covered


@pytest.mark.parametrize("kind", list(DRAWS))
def test_sizes_and_values_still_vary_between_seeds(kind):
    # No two seeds share inputs; the shapes vary too, as far as the rules leave sizes and counts free (the two
    # ties cases: a size or two each, and counts apart from the window's size).
    drawn = draws(kind)[:20]
    shapes = {tuple(tuple(c["inputs"]["x"].shape) for c in cases_) for cases_ in drawn}
    assert len(shapes) >= (8 if kind == "ties" else 15), \
        f"only {len(shapes)} distinct draws of {kind} shapes in 20 seeds"
    first_values = {cases_[0]["inputs"]["x"].tobytes() for cases_ in drawn}
    assert len(first_values) == 20


def _out(size, kernel, stride, pad):
    return 1 + (size + 2 * pad - kernel) // stride


@pytest.mark.parametrize("kind", ["conv", "pool", "ties"])
def test_window_values_cannot_hide_a_bug(kind):
    for drawn in draws(kind):
        for case in drawn:
            x, p = case["inputs"]["x"], case["params"]
            n, c, h, w = x.shape
            kh, kw = case["inputs"]["w"].shape[2:] if kind == "conv" else (p["pool_height"], p["pool_width"])
            s, pad = p["stride"], p.get("pad", 0)
            # Not square, both sides above 1, and so is the output, with two windows at least on each axis.
            assert h != w and min(h, w) > 1, case["category"]
            outs = _out(h, kh, s, pad), _out(w, kw, s, pad)
            assert outs[0] != outs[1] and min(outs) >= 2, case["category"]
            # The stride divides both spans or neither.
            assert ((h + 2 * pad - kh) % s == 0) == ((w + 2 * pad - kw) % s == 0), case["category"]
            counts = [n, c] + ([case["inputs"]["w"].shape[0]] if kind == "conv" else [])
            assert len(set(counts)) == len(counts), case["category"]
            # A height/width mix-up changes the output's shape.
            assert _out(w, kh, s, pad) != outs[0] and _out(h, kw, s, pad) != outs[1], case["category"]
            if kind == "ties":   # the last window's maxima are all equal, in every image and channel
                last = x[:, :, (outs[0] - 1) * s:(outs[0] - 1) * s + kh, (outs[1] - 1) * s:(outs[1] - 1) * s + kw]
                assert np.all(last == 2.0) and np.all(x[:, :, (outs[0] - 1) * s:, (outs[1] - 1) * s:] <= 2.0)
            if kind != "conv" and s < max(kh, kw):   # two overlapping windows share their maximum
                row, column = (s if s < kh else 0), (s if s < kw else 0)
                assert np.all(x[:, :, row, column] == x.max(axis=(2, 3))), case["category"]


@pytest.mark.parametrize("kind", ["batchnorm", "spatial_batchnorm"])
def test_batchnorm_values_cannot_hide_a_bug(kind):
    for drawn in draws(kind):
        for case in drawn:
            x, p = case["inputs"]["x"], case["params"]
            assert 1e-3 <= p["eps"] <= 1e-2 and 0.5 <= p["momentum"] <= 0.8   # far from 1e-5 and 0.9
            assert x.shape[0] != x.shape[1], case["category"]                # batch and features apart
            if kind == "spatial_batchnorm":
                assert x.shape[2] != x.shape[3] and min(x.shape[2:]) > 1, case["category"]


def test_strata_are_read_off_the_arrays():
    # A hand-made case: a 3x1 (tall) kernel, stride 2, pad 0, on a 1-channel 7x4 batch of 1; 7 - 3 = 4 divides by
    # 2 but 4 - 1 = 3 does not.
    case = {"inputs": {"x": np.zeros((1, 1, 7, 4)), "w": np.zeros((2, 1, 3, 1)), "b": np.zeros(2)},
            "params": {"stride": 2, "pad": 0}}
    assert cases.strata("conv", case) == {"tall kernel", "input taller than wide", "pad 0", "stride > 1",
                                          "stride does not divide the size", "batch of 1", "1 channel"}
    case["params"]["pad"] = 1   # at least the kernel's width
    assert {"pad > 0", "pad at least the kernel"} <= cases.strata("conv", case)
