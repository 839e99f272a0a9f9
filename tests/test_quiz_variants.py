"""grader/cnn/quiz_variants.py: per-student quiz cases and the grader's closed-form oracle.

The draws must cover the categories where bugs hide, be valid for PyTorch (whose own shape rules, on the meta
device, give the same output sizes as the oracle), reproduce from a seed, and the oracle must agree with the
reference solution and with the hook counts of grader/cnn/model_counts.py.
"""
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from grader.cnn import quiz_variants as qv
from grader.cnn.model_counts import count_model
from support import solution

quiz = solution("quiz")

REQUIRED_TAGS = {
    "conv_output_size": {"stride 1", "stride>1", "pad 0", "pad>0", "divisible", "not divisible", "1x1 kernel"},
    "conv_layer": {"stride 1", "stride>1", "pad 0", "pad>0", "divisible", "not divisible", "1x1 kernel",
                   "bias", "no bias"},
    "pool_output_size": {"stride 1", "stride>1", "pad 0", "pad>0", "divisible", "not divisible", "overlapping",
                         "non-overlapping", "gaps", "output 1x1"},
    "fc_layer": set(qv.FC_SCENARIOS),
}
REQUIRED_TAGS["pool_layer"] = REQUIRED_TAGS["pool_output_size"]
SEEDS = range(40)


def by_kind(cases):
    out = {kind: [] for kind in qv.KINDS}
    for case in cases:
        out[case["kind"]].append(case)
    return out


def test_every_draw_covers_the_categories():
    for seed in SEEDS:
        groups = by_kind(qv.draw_quiz_cases(np.random.default_rng(seed)))
        for kind, required in REQUIRED_TAGS.items():
            seen = {tag for case in groups[kind] for tag in case["tags"]}
            assert required <= seen, f"seed {seed}, {kind}: missing {sorted(required - seen)}"


def test_every_draw_has_the_same_layout_and_shows_the_same_slips():
    def layout(seed):
        return [(case["kind"], case["category"], case["tags"],
                 qv._shown(*(case["args"][k] for k in ("size", "kernel", "stride", "pad"))) if "size" in case["args"]
                 else None, case["args"].get("bias"))
                for case in qv.draw_quiz_cases(seed)]
    first = layout(0)
    assert [kind for kind, *_ in first] == [kind for kind in qv.KINDS
                                            for _ in range({"conv_output_size": 10, "conv_layer": 10,
                                                            "pool_output_size": 9, "pool_layer": 9,
                                                            "fc_layer": 5}[kind])]
    for seed in SEEDS:
        assert layout(seed) == first, seed
    # A forgotten c_in always shows, and a conv's c_in and filters differ (a swap shows).
    for seed in SEEDS:
        for case in qv.draw_quiz_cases(seed):
            if case["kind"] in ("conv_layer", "pool_layer"):
                assert case["args"]["c_in"] > 1 and case["args"]["c_in"] != case["args"].get("filters"), case


def test_no_layer_case_has_a_whole_number_of_kb_or_an_output_of_two():
    # There `//` for `/` would give the right memory_kb, and `s ** s` the right `s * s`: a slip would pass on
    # some seeds only (scripts/mutation.py found both).
    for seed in SEEDS:
        for case in qv.draw_quiz_cases(seed):
            if case["kind"] in ("conv_layer", "pool_layer", "fc_layer"):
                memory = qv.expected(case)["memory_kb"]
                assert memory != int(memory), case
            if "size" in case["args"] and "whole input" not in case["category"]:
                assert qv.output_size(*(case["args"][k] for k in ("size", "kernel", "stride", "pad"))) >= 3, case


def test_combinations_where_bugs_hide_appear():
    combos = {
        "conv_layer": [{"stride>1", "pad>0", "not divisible", "no bias"}, {"stride>1", "pad>0", "not divisible", "bias"},
                       {"stride>1", "pad 0", "not divisible"}, {"stride>1", "pad>0", "divisible"}],
        "pool_layer": [{"overlapping", "not divisible"}, {"overlapping", "pad>0"}, {"non-overlapping", "not divisible"},
                       {"non-overlapping", "divisible", "pad 0"}],
    }
    tag_sets = {kind: [] for kind in combos}
    for seed in SEEDS:
        for case in qv.draw_quiz_cases(seed):
            if case["kind"] in combos:
                tag_sets[case["kind"]].append(set(case["tags"]))
    for kind, wanted in combos.items():
        for combo in wanted:
            assert any(combo <= tags for tags in tag_sets[kind]), f"{kind}: no draw has {sorted(combo)}"


def test_categories_name_no_sizes():
    for seed in SEEDS:
        for case in qv.draw_quiz_cases(seed):
            a, category = case["args"], case["category"]
            assert category.startswith(("conv", "pool", "fc")) and case["tags"], case
            allowed = {a.get("kernel"), a.get("stride"), a.get("pad")} - {None}
            numbers = {int(n) for n in re.findall(r"\d+", category)}
            assert numbers <= allowed, f"category {category!r} shows values beyond kernel/stride/pad: {a}"


def _torch_layer(case):
    a = case["args"]
    if case["kind"] in ("conv_output_size", "conv_layer"):
        return nn.Conv2d(a.get("c_in", 1), a.get("filters", 1), a["kernel"], a["stride"], a["pad"],
                         bias=a.get("bias", True), device="meta"), (a.get("c_in", 1), a["size"], a["size"])
    if case["kind"] in ("pool_output_size", "pool_layer"):
        return nn.MaxPool2d(a["kernel"], a["stride"], a["pad"]), (a.get("c_in", 1), a["size"], a["size"])
    return nn.Linear(a["d_in"], a["d_out"], device="meta"), (a["d_in"],)


def test_draws_are_valid_for_pytorch_and_the_oracle_agrees_with_it():
    for seed in range(20):
        for case in qv.draw_quiz_cases(seed):
            assert qv.is_valid(case), case
            layer, input_shape = _torch_layer(case)
            counted = count_model(layer, input_shape, device="meta")["layers"][0]   # raises if torch rejects it
            want = qv.expected(case)
            if case["kind"].endswith("_output_size"):
                assert counted["size_out"] == want, (case, counted)
                if case["kind"] == "pool_output_size":   # average pooling follows the same rule
                    a = case["args"]
                    out = nn.AvgPool2d(a["kernel"], a["stride"], a["pad"])(torch.empty(1, 1, a["size"], a["size"],
                                                                                       device="meta"))
                    assert out.shape[-1] == want, case
            else:
                got = {key: counted[key] for key in want}
                assert got == want, f"{case}: torch hooks {got}, oracle {want}"


def test_is_valid_rejects_what_pytorch_rejects():
    bad = [
        ("conv_output_size", dict(size=3, kernel=5, stride=1, pad=0)),            # kernel larger than the input
        ("conv_layer", dict(c_in=1, size=2, filters=1, kernel=7, stride=2, pad=2, bias=True)),
        ("pool_output_size", dict(size=10, kernel=3, stride=2, pad=2)),           # pad > kernel // 2
        ("pool_layer", dict(c_in=2, size=10, kernel=2, stride=2, pad=2)),
        ("pool_output_size", dict(size=2, kernel=5, stride=1, pad=1)),
    ]
    for kind, args in bad:
        case = {"kind": kind, "args": args}
        assert not qv.is_valid(case), case
        layer, input_shape = _torch_layer(case)
        with pytest.raises(RuntimeError):
            layer(torch.empty(1, *input_shape, device="meta"))
    assert not qv.is_valid({"kind": "conv_output_size", "args": dict(size=9, kernel=3, stride=1, pad=3)})  # pad >= k
    assert qv.is_valid({"kind": "pool_output_size", "args": dict(size=10, kernel=3, stride=2, pad=1)})


def _close(got, want):
    if isinstance(want, dict):
        return got.keys() >= want.keys() and all(_close(got[key], value) for key, value in want.items())
    if isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-12)
    return got == want and type(got) is type(want)


def test_oracle_equals_the_solution():
    functions = {kind: getattr(quiz, kind) for kind in qv.KINDS}
    checked = 0
    for seed in range(200):
        for case in qv.draw_quiz_cases(seed):
            got, want = functions[case["kind"]](**case["args"]), qv.expected(case)
            assert _close(got, want), f"{case}: solution {got}, oracle {want}"
            checked += 1
    assert checked == 200 * 43
    # and on the lecture's numbers, which the oracle never sees through the solution
    conv1 = {"kind": "conv_layer", "args": dict(c_in=3, size=227, filters=64, kernel=11, stride=4, pad=2, bias=True)}
    assert qv.expected(conv1) == {"c_out": 64, "size_out": 56, "memory_kb": 784.0, "params": 23_296,
                                  "flops": 72_855_552}
    pool1 = {"kind": "pool_layer", "args": dict(c_in=64, size=56, kernel=3, stride=2, pad=0)}
    assert qv.expected(pool1) == {"c_out": 64, "size_out": 27, "memory_kb": 182.25, "params": 0, "flops": 419_904}
    fc6 = {"kind": "fc_layer", "args": dict(d_in=9216, d_out=4096)}
    assert qv.expected(fc6) == {"c_out": 4096, "size_out": None, "memory_kb": 16.0, "params": 37_752_832,
                                "flops": 37_748_736}


def test_draws_reproduce_from_the_seed():
    assert qv.draw_quiz_cases(7) == qv.draw_quiz_cases(np.random.default_rng(7))
    draws = [qv.draw_quiz_cases(seed) for seed in range(20)]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert draws[i] != draws[j], f"seeds {i} and {j} drew the same cases"
    for case in qv.draw_quiz_cases(11):   # plain Python values, fit for JSON and for the student's process
        assert all(type(value) in (int, bool) for value in case["args"].values()), case
