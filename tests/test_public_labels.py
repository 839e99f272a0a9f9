"""The public layers tests say what they test: each conv and pool case's label is made from its sizes
(``geometry`` in solutions/cnn/tests/test_layers.py), and what a label claims holds when its windows are laid out
one by one along each axis. The cases also cover the geometries where bugs hide."""
import re
import sys
from pathlib import Path

import pytest

from grader import paths
from support import load_module

LABEL = re.compile(r"(?P<kh>\d+)x(?P<kw>\d+) (?P<noun>kernel|window), stride (?P<stride>\d+)(?:, pad (?P<pad>\d+))?, "
                   r"(?P<h>\d+)x(?P<w>\d+) input; (?P<spacing>[^;]+)(?:; (?P<division>.+))?")
SPACING = {"overlapping windows": "overlap", "windows side by side": "side by side", "gaps between windows": "gaps"}


@pytest.fixture(scope="module")
def public():
    """The handout's tests/test_layers.py, imported as pytest imports it in the handout (its own folder and the
    handout's on the path); the handout's modules it imports leave sys.modules afterwards."""
    handout = paths.assignments_dir("cnn")
    before, path = set(sys.modules), list(sys.path)
    sys.path[:0] = [str(handout / "tests"), str(handout)]
    try:
        yield load_module(handout / "tests" / "test_layers.py")
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - before:
            if Path(getattr(sys.modules[name], "__file__", None) or "/").is_relative_to(handout):
                del sys.modules[name]


def laid_out(size, window, stride, pad):
    """Along one axis: how the windows at 0, stride, 2 stride, ... that fit the padded input meet ("overlap",
    "side by side", "gaps"), and whether the last one ends at the padded input's edge."""
    padded = size + 2 * pad
    covers = [0] * padded
    start = 0
    while start + window <= padded:
        for row in range(start, start + window):
            covers[row] += 1
        start += stride
    end = max(row for row, count in enumerate(covers) if count) + 1
    spacing = "overlap" if max(covers) > 1 else "gaps" if 0 in covers[:end] else "side by side"
    return spacing, end == padded


def claims(label):
    """What ``label`` says of each axis (height, width): (its sizes, how windows meet, whether the stride divides
    the span, None where it says nothing)."""
    found = LABEL.fullmatch(label)
    assert found, f"not a geometry label: {label!r}"
    spacing = found["spacing"]
    if spacing in SPACING:
        meet = [SPACING[spacing]] * 2
    else:
        pair = re.fullmatch(r"in height (.+), in width (.+)", spacing)
        assert pair and pair[1] != pair[2], label
        meet = [SPACING[pair[1]], SPACING[pair[2]]]
    division = found["division"]
    if division is None:
        divides = [None, None]
    elif division.startswith("the stride divides neither"):
        divides = [False, False]
    elif " and " in division:
        divides = [True, True]
    else:
        yes, no = re.fullmatch(r"the stride divides ([HW])[^,]*, not ([HW]).*", division).groups()
        assert yes != no, label
        divides = [yes == "H", yes == "W"]
    sizes = [(int(found[side]), int(found[k])) for side, k in (("h", "kh"), ("w", "kw"))]
    return int(found["stride"]), int(found["pad"] or 0), found["noun"], list(zip(sizes, meet, divides))


def cases(public):
    """(label, x shape, window, stride, pad, the label's noun) of every conv and pool case."""
    for label, (x_shape, w_shape, stride, pad) in public.CONV_CASES.items():
        yield label, x_shape, w_shape[2:], stride, pad, "kernel"
    for label, (x_shape, ph, pw, stride) in public.POOL_CASES.items():
        yield label, x_shape, (ph, pw), stride, 0, "window"


def test_every_label_is_made_from_its_sizes_and_says_what_its_windows_do(public):
    checked = 0
    for label, x_shape, window, stride, pad, noun in cases(public):
        said_stride, said_pad, said_noun, axes = claims(label)
        assert (said_stride, said_pad, said_noun) == (stride, pad, noun), label
        for ((size, k), meet, divides), real_size, real_k in zip(axes, x_shape[2:], window):
            assert (size, k) == (real_size, real_k), label
            spacing, ends_at_edge = laid_out(size, k, stride, pad)
            assert meet == spacing, f"{label!r}: its windows {spacing}"
            if stride > 1:
                assert divides == ends_at_edge, \
                    f"{label!r}: the last window {'ends' if ends_at_edge else 'does not end'} at the padded edge"
            else:
                assert divides is None, label
            checked += 1
    assert checked == 2 * (len(public.CONV_CASES) + len(public.POOL_CASES))


def test_the_labels_computed_for_a_case_the_stride_divides_and_one_it_does_not(public):
    # 7 - 3 = 4 is a multiple of 2 (the label the public tests once gave "does not divide"); 8 - 3 = 5 is not
    assert public.geometry((2, 2, 7, 7), (3, 3), 2, 0) == ("3x3 kernel, stride 2, pad 0, 7x7 input; overlapping "
                                                           "windows; the stride divides H + 2P - K and W + 2P - K")
    assert public.geometry((2, 2, 8, 7), (3, 3), 2) == ("3x3 window, stride 2, 8x7 input; overlapping windows; the "
                                                        "stride divides W - K, not H - K")


def test_the_cases_cover_the_geometries_where_bugs_hide(public):
    """Stride above 1 with pad 0 on a span it does not divide, a padded stride, a non-square kernel, gaps; pools
    with overlapping windows, gaps and a span the stride does not divide."""
    found = {kind: set() for kind in ("kernel", "window")}
    for label, *_ in cases(public):
        stride, pad, noun, axes = claims(label)
        for (_, k), meet, divides in axes:
            found[noun] |= {meet, ("stride", stride > 1, "pad", pad > 0, "divides", divides)}
        if axes[0][0][1] != axes[1][0][1]:
            found[noun].add("non-square")
    assert {("stride", True, "pad", False, "divides", False), ("stride", True, "pad", True, "divides", True),
            "gaps", "overlap", "non-square"} <= found["kernel"]
    assert {"overlap", "gaps", "side by side", ("stride", True, "pad", False, "divides", False)} <= found["window"]
