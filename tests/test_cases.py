"""Stratified hidden cases: every draw holds a case of every stratum of grader/cnn/cases.py's STRATA."""
import numpy as np
import pytest

from grader.cnn import cases

DRAWS = {
    "conv": cases.conv_cases,
    "pool": cases.pool_cases,
    "batchnorm": cases.batchnorm_cases,
    "spatial_batchnorm": lambda rng: cases.batchnorm_cases(rng, spatial=True),
}


@pytest.mark.parametrize("kind", list(DRAWS))
def test_every_seed_covers_every_stratum(kind):
    for seed in range(200):
        drawn = DRAWS[kind](np.random.default_rng([seed, 1]))
        covered = set().union(*(cases.strata(kind, case) for case in drawn))
        missing = set(cases.STRATA[kind]) - covered
        assert not missing, f"seed {seed}: no {kind} case in {sorted(missing)}"


@pytest.mark.parametrize("kind", list(DRAWS))
def test_sizes_and_values_still_vary_between_seeds(kind):
    shapes = {tuple(tuple(c["inputs"]["x"].shape) for c in DRAWS[kind](np.random.default_rng([seed, 1])))
              for seed in range(20)}
    assert len(shapes) >= 15, f"only {len(shapes)} distinct draws of {kind} shapes in 20 seeds"


def test_strata_are_read_off_the_arrays():
    # A hand-made case: a 3x1 (tall) kernel, stride 2, pad 0, on a 1-channel 7x4 batch of 1; 7 - 3 = 4 divides by
    # 2 but 4 - 1 = 3 does not.
    case = {"inputs": {"x": np.zeros((1, 1, 7, 4)), "w": np.zeros((2, 1, 3, 1)), "b": np.zeros(2)},
            "params": {"stride": 2, "pad": 0}}
    assert cases.strata("conv", case) == {"tall kernel", "input taller than wide", "pad 0", "stride > 1",
                                          "stride does not divide the size", "batch of 1", "1 channel"}
