"""Checker of resnet.py: the student's blocks and networks, built in one sandbox child, against the functional
reference ``grader/cnn/oracles/resnet.py``.

Every module under test gets the grader's own random weights (through ``load_state_dict``), so forward passes
compare with the reference run in float64 on the very same weights, in eval and in train mode, and the running
statistics a train-mode forward leaves behind are compared too. Then a training step: ``loss.backward()`` through
the student's module, whose parameter (and input) gradients are compared with the reference's, and whose input
tensor comes back as data, compared with what was sent (a forward may not edit it). A network case that fails
while a block it uses failed its own test names that test as the cause. The reference runs in an oracle child
(``grader/oracle.py``) on the same arrays, before the student's child starts and ended before it: this process
never loads torch, and only one torch process lives at a time. Parameter names and shapes come from
``describe``; the initialisation test reads the student's own seeded init.
"""
import dataclasses
import math

import numpy as np

from grader import stats
from grader.checks import CATEGORY, Kind, Outcome, blocked, joined
from grader.cnn import architectures as layout
from grader.cnn import behaviours, rules
from grader.cnn.given import with_given
from grader.cnn.points import PARTS, STEP_WEIGHT, UNTRAINABLE_SHARE
from grader.compare import compare
from grader.oracle import Oracle
from grader.plan import Plan, bindings
from grader.text import parse_source

FILE = "resnet.py"
FORBIDDEN_MODULES = rules.FORBIDDEN_MODULES[FILE]
TOL = 1e-4               # float32 forward against a float64 reference...
FLOOR = 1e-3
FLOOR_SHARE = 0.05       # ...relative to the output's scale: float32 round-off is absolute, near 1e-6 of it
# The training step runs in float64 on both sides (the driver's backward): the solution's gradients equal the
# reference's to the last bit in 40 grades; a wrong backward is off by far more than 1e-5.
GRAD_TOL = 1e-5
STATS = ("running_mean", "running_var")
MODES = {"eval": False, "train": True}   # forward mode -> training
# torch's RuntimeError when backward meets a tensor saved for it that was edited in place since.
AUTOGRAD_IN_PLACE = "modified by an inplace operation"
# Construct / forward steps get three plain calls' time: building resnet50 takes 0.42 s of CPU here, so 6 s
# leaves over 5x headroom on half a CPU.
BIG_TIMEOUT = 3
TRAINING_STEP = Kind("training step", "training steps", STEP_WEIGHT)
# Block kind -> the student's class, which is also the name of its test.
BLOCK_CLASS = {"basic": "BasicBlock", "bottleneck": "Bottleneck", "preact": "PreActBlock"}
# Each category of behaviours.RESNET["shapes"], in its order: (in_channels, width, stride) in units of the drawn
# channel count; stride None is left out (its default). A bottleneck's output is 4 x width, so it keeps its
# channels with in_channels = 4 x width.
SHAPES = {"basic": [(1, 1, None), (1, 2, 1), (2, 1, 1), (1, 1, 2), (1, 2, 2)],
          "bottleneck": [(4, 1, None), (2, 1, 1), (8, 1, 1), (4, 1, 2), (4, 2, 2)]}
SHAPES["preact"] = SHAPES["basic"]
BAD_STEMS = ("CIFAR", "ImageNet", "resnet", "mnist")
WIDTHS_ERRORS = {"shorter": [8], "longer": [8, 16, 32]}   # widths of another length than layers [1, 1]
NETWORK_TEST, INIT_TEST = "ResNet networks", "init and zero_init_residual"
NUMBER = {name: number for number, name, _ in PARTS["resnet"][1]}
# Every factory of the contract, its names and parameter count checked (constructed only; never run), with
# both stems among them and every factory with its defaults. The counts are the contract's (torchvision's for
# the imagenet stem); None where the contract states none: names and shapes only.
COUNTED = [("resnet20", {}, 272_474), ("resnet32", {}, 466_906), ("resnet56", {}, 855_770),
           ("resnet18", {}, 11_173_962), ("preact_resnet18", {}, 11_172_170),
           ("resnet34", {"num_classes": 1000, "stem": "imagenet"}, 21_797_672),
           ("resnet50", {"num_classes": 1000, "stem": "imagenet"}, 25_557_032),
           ("resnet34", {}, None), ("resnet50", {}, None)]
# ResNet with its widths left out: built and described only.
DEFAULT_WIDTHS = ("ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5)", [1, 1, 1, 1], 5)


def imports_torchvision(source):
    """Whether any import statement, anywhere in the file, names torchvision."""
    tree = parse_source(source)
    return tree is not None and any(full.split(".")[0] == "torchvision" for full in bindings(tree).values())


def random_state(rng, shapes):
    """float32 weights for every key of ``shapes`` (BN variances positive), num_batches_tracked int64 0."""
    state = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            value = np.array(0, dtype=np.int64)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "running_mean":
            value = 0.1 * rng.standard_normal(shape)
        elif leaf == "weight" and len(shape) == 1:       # BN gamma
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "bias":
            value = 0.1 * rng.standard_normal(shape)
        else:                                             # conv / fc weight: fan-in scaled
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        state[key] = value.astype(np.float32) if value.dtype != np.int64 else value
    return state


def _floor(expected):
    return max(FLOOR, FLOOR_SHARE * float(np.max(np.abs(expected)))) if np.size(expected) else FLOOR


def _shapes_verdict(answer, expected):
    """(ok, message): the describe() answer against the expected state_dict shapes (parameters and buffers)."""
    ok, value = answer
    if not ok:
        return False, value
    try:
        got = {n: tuple(s) for n, s in value["parameters"]}
        got_buffers = {n: tuple(s) for n, s in value["buffers"]}
    except (TypeError, KeyError, ValueError):
        return False, "could not read its parameters"
    want = {k: tuple(s) for k, s in expected.items() if not layout.is_buffer(k)}
    want_buffers = {k: tuple(s) for k, s in expected.items() if layout.is_buffer(k)}
    for kind, g, w in (("parameter", got, want), ("buffer", got_buffers, want_buffers)):
        missing, extra = sorted(set(w) - set(g)), sorted(set(g) - set(w))
        if missing:
            return False, f"missing {kind} {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        if extra:
            return False, f"unexpected {kind} {extra[0]}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        for name in w:
            if g[name] != w[name]:
                return False, f"{kind} {name} has shape {g[name]}, expected {w[name]}"
    return True, ""


class Checker:
    def __init__(self, rng):
        self.rng = rng
        self.plan = Plan("resnet")
        self.count = 0

    def state_ref(self, state):
        """Send ``state`` under a fresh prefix; the ref gives it back as a dict of tensors in the child."""
        prefix = f"s{self.count}_"
        self.count += 1
        for key, value in state.items():
            self.plan.inputs[prefix + key] = value
        return {"state": prefix}

    def plan_model(self, tag, target, args, kwargs, shapes, x, out_shape):
        """Construct, describe, load grader weights, forward eval then train, read running stats, then a
        training step: backward of ``(output * upstream).sum()``. Returns the weights and ``upstream``."""
        p = self.plan
        p.call("builtin:construct", *([{"fn": target}] + args), save=f"m{tag}", timeout_factor=BIG_TIMEOUT,
               **kwargs)
        p.call("builtin:describe", {"var": f"m{tag}"}, id=f"describe{tag}")
        state = random_state(self.rng, shapes)
        p.call("builtin:load", {"var": f"m{tag}"}, self.state_ref(state), id=f"load{tag}")
        xkey = f"x{tag}"
        p.inputs[xkey] = x
        p.call("builtin:forward", {"var": f"m{tag}"}, {"tensor": xkey}, {"v": False}, id=f"eval{tag}",
               timeout_factor=BIG_TIMEOUT)
        p.call("builtin:forward", {"var": f"m{tag}"}, {"tensor": xkey}, {"v": True}, id=f"train{tag}",
               timeout_factor=BIG_TIMEOUT)
        p.call("builtin:state", {"var": f"m{tag}"}, {"v": list(STATS)}, id=f"stats{tag}")
        upstream = self.rng.standard_normal(out_shape).astype(np.float32)
        p.inputs[f"up{tag}"] = upstream
        p.call("builtin:backward", {"var": f"m{tag}"}, {"tensor": xkey}, {"tensor": f"up{tag}"}, id=f"step{tag}",
               timeout_factor=BIG_TIMEOUT)
        return state, upstream

    def verdicts(self, tag, state, x, expected, owner):
        """{"parameters", "eval", "train", "step": (ok, msg), "untrainable": bool}; ``expected``: {mode: (output,
        running statistics)} and {"step": (parameter gradients, input gradient)} from the reference; ``owner``:
        whose forward ran, in the student's words."""
        p = self.plan
        out = {"parameters": _shapes_verdict(p.answer(f"describe{tag}"), {k: v.shape for k, v in state.items()})}
        ok, value = p.answer(f"load{tag}")
        load_problem = None
        if not ok:
            load_problem = f"load_state_dict with the expected keys failed: {value}"
        elif isinstance(value, list) and any(value):
            load_problem = "load_state_dict reported missing or unexpected keys"
        if load_problem:
            return dict(out, untrainable=False, **{mode: (False, load_problem) for mode in (*MODES, "step")})
        for mode, training in MODES.items():
            output, new_state = expected[mode]
            ok, got = p.answer(f"{mode}{tag}")
            if not ok:
                out[mode] = (False, got)
                continue
            good, message, _ = compare("output", got, output, TOL, dtype=None, show_where=False,
                                       floor=_floor(output))
            if good and training:
                good, message = self.stats_verdict(tag, new_state)
            out[mode] = (good, "" if good else message)
        *out["step"], out["untrainable"] = self.step_verdict(tag, x, *expected["step"], owner)
        return out

    def step_verdict(self, tag, x, gradients, input_gradient, owner):
        """The training step: (ok, message, whether it shows the module cannot be trained). Judged in this order:
        the step ran (where the train-mode forward ran and the step did not, loss.backward() failed: it cannot be
        trained), the input as it was sent, a gradient on every parameter and the input (where one has none, no
        training reaches it, or, for the input, anything before the module), each gradient against the
        reference's."""
        ok, got = self.plan.answer(f"step{tag}")
        if not ok:
            backward_failed = self.plan.answer(f"train{tag}")[0]
            if AUTOGRAD_IN_PLACE in got:
                return False, (f"{owner} changes a tensor autograd still needs, so loss.backward() fails: add "
                               "into a new tensor, e.g. `out = out + shortcut`, rather than in place (`+=`)"), \
                    backward_failed
            return False, got, backward_failed
        if not isinstance(got, dict) or not isinstance(got.get("parameters"), dict):
            return False, "could not read the gradients", False
        after = got.get("input")
        if not isinstance(after, np.ndarray) or after.shape != x.shape or not np.array_equal(after, x):
            return False, f"{owner} changes its input tensor in place: leave the caller's x as it was", False
        compared = [*((key, got["parameters"].get(key), value) for key, value in gradients.items()),
                    ("the input x", got.get("input_grad"), input_gradient)]
        for name, have, _ in compared:
            if have is None:
                return False, f"no gradient reached {name}: something cuts its path to the loss (a `.detach()`, " \
                              "`.data` or `torch.no_grad()`?)", True
        for name, have, want in compared:
            good, message, _ = compare(f"the gradient of {name}", have, want, GRAD_TOL, dtype=None, show_where=False,
                                       floor=_floor(want))
            if not good:
                return False, message, False
        return True, "", False

    def stats_verdict(self, tag, new_state):
        ok, got = self.plan.answer(f"stats{tag}")
        if not ok:
            return False, f"could not read the running statistics: {got}"
        if not isinstance(got, dict):
            return False, "could not read the running statistics"
        for key in sorted(k for k in new_state if k.endswith(STATS)):
            if key not in got:
                return False, f"running statistic {key} missing after the forward"
            good, message, _ = compare(f"{key} after a train-mode forward", got[key], new_state[key], TOL,
                                       dtype=None, show_where=False, floor=_floor(new_state[key]))
            if not good:
                return False, message
        return True, ""


def _block_configs(rng, kind):
    """[(label, category, in_channels, width, stride or None)] for one block kind: one per category of
    behaviours.RESNET["shapes"] on every draw; the seed draws the channel count (in the label, not the category)."""
    unit = int(rng.choice([2, 4] if kind == "bottleneck" else [4, 8]))
    out = []
    for category, (cin, width, stride) in zip(behaviours.RESNET["shapes"], SHAPES[kind]):
        cin, width = cin * unit, width * unit
        cout = width * layout.EXPANSION[kind]
        shortcut = "projection" if layout.needs_projection(cin, cout, stride or 1) else "identity"
        desc = f"{cin}->{cout}" if kind != "bottleneck" else f"{cin}->{cout} (width {width})"
        out.append((f"{BLOCK_CLASS[kind]} {desc}, {category} ({shortcut})", category, cin, width, stride))
    return out


def _run(source, rng, limits):
    ck = Checker(rng)
    p = ck.plan
    # (test, (label, the category its cases count in), tag, state, x, upstream, what the reference runs: a block
    #  kind and stride, or a spec, (the network's name, its block kind) for a network)
    jobs = []

    # Blocks
    for kind in ("basic", "bottleneck", "preact"):
        for i, (label, category, cin, width, stride) in enumerate(_block_configs(rng, kind)):
            tag = f"{kind}{i}"
            given = [{"v": cin}, {"v": width}] + ([{"v": stride}] if stride is not None else [])
            stride = stride or 1
            shapes = {k: s for k, s in layout.block_shapes(kind, cin, width, stride)}
            # Odd and non-square sizes too: stride 2 must cope with sizes it does not divide.
            height, width_px = (int(v) for v in rng.integers(7, 11, size=2))
            x = rng.standard_normal((int(rng.integers(2, 5)), cin, height, width_px)).astype(np.float32)
            out_shape = (len(x), width * layout.EXPANSION[kind], -(-height // stride), -(-width_px // stride))
            state, upstream = ck.plan_model(tag, BLOCK_CLASS[kind], given, {}, shapes, x, out_shape)
            jobs.append((BLOCK_CLASS[kind], (label, category), tag, state, x, upstream,
                         {"block": kind, "stride": stride}, None))

    # Networks: names and counts of the factories (constructed only, one at a time)
    for i, (name, kwargs, _) in enumerate(COUNTED):
        # Let the previous one go first: resnet34 and resnet50 (1000 classes) together would take 190 MB.
        p.call("builtin:dict", save="big")
        p.call("builtin:construct", {"fn": name}, save="big", timeout_factor=BIG_TIMEOUT,
               **{k: {"v": v} for k, v in kwargs.items()})
        p.call("builtin:describe", {"var": "big"}, id=f"count{i}")
    p.call("builtin:dict", save="big")
    _, layers, num_classes = DEFAULT_WIDTHS
    p.call("builtin:construct", {"fn": "ResNet"}, {"fn": "BasicBlock"}, {"v": layers}, save="big",
           num_classes={"v": num_classes}, timeout_factor=BIG_TIMEOUT)
    p.call("builtin:describe", {"var": "big"}, id="widths")
    p.call("builtin:dict", save="big")   # let the last one go

    # The documented errors: built with a stem that does not exist, and with widths of another length.
    small = [{"fn": "ResNet"}, {"fn": "BasicBlock"}, {"v": [1, 1]}]
    p.call("builtin:built", *small, widths={"v": [8, 16]}, stem={"v": str(rng.choice(BAD_STEMS))}, id="error stem")
    for what, widths in WIDTHS_ERRORS.items():   # shorter and longer: a < or > for != fails one of them
        p.call("builtin:built", *small, widths={"v": widths}, id=f"error widths {what}")

    # Networks run with the grader's weights
    # (label, its name in a message, what is built, its arguments, its layout, the input's shape)
    nets = [("resnet20 forward", "resnet20", "resnet20", [], {}, layout.arch("resnet20"), (2, 3, 16, 16)),
            ("ResNet(BasicBlock, [1, 1], widths=(8, 16), num_classes=5, stem='imagenet') forward", "this network",
             "ResNet",
             [{"fn": "BasicBlock"}, {"v": [1, 1]}], {"widths": {"v": [8, 16]}, "num_classes": {"v": 5},
                                                      "stem": {"v": "imagenet"}},
             layout.ArchSpec("basic", (1, 1), (8, 16), "imagenet", 5), (2, 3, 16, 16)),
            ("ResNet(PreActBlock, [1, 1], widths=(8, 16), num_classes=5) forward", "this network", "ResNet",
             [{"fn": "PreActBlock"}, {"v": [1, 1]}], {"widths": {"v": [8, 16]}, "num_classes": {"v": 5}},
             layout.ArchSpec("preact", (1, 1), (8, 16), "cifar", 5), (2, 3, 8, 8)),
            # The cifar stem given, not left out: a string from the caller, not the default's interned literal.
            ("ResNet(Bottleneck, [1, 1], widths=(4, 8), num_classes=5, stem='cifar') forward", "this network",
             "ResNet", [{"fn": "Bottleneck"}, {"v": [1, 1]}], {"widths": {"v": [4, 8]}, "num_classes": {"v": 5},
                                                              "stem": {"v": "cifar"}},
             layout.ArchSpec("bottleneck", (1, 1), (4, 8), "cifar", 5), (2, 3, 8, 8)),
            ("ResNet(PreActBlock, [1, 1], widths=(8, 16), stem='imagenet') forward, num_classes left out "
             "(default 10)", "this network", "ResNet",
             [{"fn": "PreActBlock"}, {"v": [1, 1]}], {"widths": {"v": [8, 16]}, "stem": {"v": "imagenet"}},
             layout.ArchSpec("preact", (1, 1), (8, 16), "imagenet", 10), (2, 3, 16, 16)),
            ("ResNet(Bottleneck, [1, 1], widths=(4, 8), num_classes=5, stem='imagenet') forward", "this network",
             "ResNet",
             [{"fn": "Bottleneck"}, {"v": [1, 1]}], {"widths": {"v": [4, 8]}, "num_classes": {"v": 5},
                                                     "stem": {"v": "imagenet"}},
             layout.ArchSpec("bottleneck", (1, 1), (4, 8), "imagenet", 5), (2, 3, 16, 16))]
    for i, (label, name, target, args, kwargs, spec, xshape) in enumerate(nets):
        tag = f"net{i}"
        x = rng.standard_normal(xshape).astype(np.float32)
        state, upstream = ck.plan_model(tag, target, args, kwargs, layout.state_dict_shapes(spec), x,
                                        (len(x), spec.num_classes))
        jobs.append((NETWORK_TEST, (label, label), tag, state, x, upstream, {"spec": dataclasses.asdict(spec)},
                     (name, spec.block)))

    # Initialisation
    zero_specs = [layout.ArchSpec("basic", (2, 2), (8, 16)), layout.ArchSpec("bottleneck", (2, 2), (4, 8)),
                  layout.ArchSpec("preact", (2, 2), (8, 16))]
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=1 + len(zero_specs))]
    p.call("builtin:construct", {"fn": "resnet20"}, seed={"v": seeds[0]}, save="init0", timeout_factor=BIG_TIMEOUT)
    p.call("builtin:state", {"var": "init0"}, {"v": ["weight", "bias"]}, id="init0")
    for i, spec in enumerate(zero_specs, start=1):
        p.call("builtin:construct", {"fn": "ResNet"}, {"fn": BLOCK_CLASS[spec.block]}, {"v": list(spec.layers)},
               widths={"v": list(spec.widths)}, zero_init_residual={"v": True}, seed={"v": seeds[i]}, save=f"init{i}",
               timeout_factor=BIG_TIMEOUT)
        p.call("builtin:state", {"var": f"init{i}"}, {"v": ["weight", "bias"]}, id=f"init{i}")

    # The reference's answers first, its child ended before the student's starts (one torch process at a time).
    with Oracle("grader.cnn.oracles.resnet") as oracle:
        expected = {tag: {**{mode: oracle.expected(state, x, training, **what) for mode, training in MODES.items()},
                          "step": oracle.gradients(state, x, upstream, **what)}
                    for _, _, tag, state, x, upstream, what, _ in jobs}
    # torch in the child: 379 MB at peak for the solution (resnet50 built), beside a numpy-only grader.
    run_limits = dataclasses.replace(limits, wall_seconds=max(limits.wall_seconds, 60),
                                     memory_mb=max(limits.memory_mb, 500), cpu_seconds=max(limits.cpu_seconds, 120))
    p.run(with_given({FILE: source}), run_limits, forbidden=FORBIDDEN_MODULES)
    return ck, jobs, expected, zero_specs


def check(files, rng, limits, names):
    """{test name: Outcome} for the tests in ``names``."""
    if FILE not in files:
        return blocked(names, f"{FILE} was not submitted")
    source = files[FILE]
    if imports_torchvision(source):
        return blocked(names, f"{FILE} may not import torchvision (see the contract): no points for this part")
    ck, jobs, expected, zero_specs = _run(source, rng, limits)
    p = ck.plan
    error = p.import_error()
    if error:
        return blocked(names, f"{FILE} could not be imported: {error}")
    outcomes = {name: Outcome() for name in (*BLOCK_CLASS.values(), NETWORK_TEST, INIT_TEST)}

    # Blocks first: a network's failures then name a block test that failed as their likely cause.
    untrainable = {}   # test -> the modules whose training step shows they cannot be trained
    for test, (label, category), tag, state, x, _, _, uses in sorted(jobs, key=lambda job: job[-1] is not None):
        owner = f"{test}.forward" if uses is None else "ResNet.forward or a block's forward"
        cause = "" if uses is None else _cause(outcomes, *uses)
        v = ck.verdicts(tag, state, x, expected[tag], owner)
        for what, key in (("parameter names and shapes", "parameters"), ("eval mode", "eval"),
                          ("train mode (output and running statistics)", "train"),
                          ("training step (loss.backward(): gradients, input left unchanged)", "step")):
            outcomes[test].add(f"{label}, {what}", *_blamed(v[key], cause),
                               TRAINING_STEP if key == "step" else CATEGORY, named=(category, what))
        if v["untrainable"]:   # a network's label is its words, then " forward"
            untrainable.setdefault(test, []).append(test if uses is None else label.split(" forward")[0])
    # Nothing built on a module that cannot be trained can learn: its test loses half, whatever else passed.
    for test, modules in untrainable.items():
        outcomes[test].cap = (UNTRAINABLE_SHARE, f"{joined(list(dict.fromkeys(modules)))} cannot be trained "
                                                 "(loss.backward() fails in a training step, or no gradient reaches "
                                                 "a parameter or the input)")

    for i, (name, kwargs, count) in enumerate(COUNTED):
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        spec = layout.arch(name, **kwargs)
        answer = p.answer(f"count{i}")
        ok, message = _shapes_verdict(answer, layout.state_dict_shapes(spec))
        if answer[0] and not ok:
            message = "parameter names or shapes differ from torchvision's: " + message
        if ok and count is not None:
            got = sum(int(np.prod(s)) for _, s in answer[1]["parameters"])
            ok = got == count
            message = "" if ok else f"{got:,} parameters, expected {count:,}"
        what = "parameter names, shapes and count" if count is not None else "parameter names and shapes"
        left_out = ", ".join(kw.left_out() for kw in behaviours.RESNET["keywords"][name] if kw.name not in kwargs)
        outcomes[NETWORK_TEST].add(f"{name}({args}){', ' + left_out if left_out else ''}: {what}",
                                   *_blamed((ok, message), _cause(outcomes, name, spec.block)))
    label, layers, num_classes = DEFAULT_WIDTHS
    widths = next(kw for kw in behaviours.RESNET["keywords"]["ResNet"] if kw.name == "widths")
    outcomes[NETWORK_TEST].add(f"{label}: {widths.left_out()}, parameter names and shapes",
                               *_blamed(_shapes_verdict(p.answer("widths"), layout.state_dict_shapes(
                                   layout.ArchSpec("basic", tuple(layers), num_classes=num_classes))),
                                   _cause(outcomes, "this network", "basic")))
    errors = behaviours.RESNET["errors"]["ResNet"]
    behaviours.add_error(outcomes[NETWORK_TEST], f"ResNet: {errors['stem']}", p.answer("error stem"))
    for what in WIDTHS_ERRORS:
        behaviours.add_error(outcomes[NETWORK_TEST], f"ResNet: {errors['widths']} (widths {what})",
                             p.answer(f"error widths {what}"))

    _init_verdicts(p, zero_specs, outcomes[INIT_TEST])
    return {name: outcomes.get(name) for name in names}


def _cause(outcomes, name, kind):
    """"resnet20 uses BasicBlock, whose test (3.1) failed: fix that first" where that test failed, else ""."""
    block = BLOCK_CLASS[kind]
    failed = outcomes[block].blocker or any(not case.ok for case in outcomes[block].cases)
    return f"{name} uses {block}, whose test ({NUMBER[block]}) failed: fix that first" if failed else ""


def _blamed(verdict, cause):
    """A failed verdict, its cause (a block test that failed) named first."""
    ok, message = verdict
    return (ok, message) if ok or not cause else (False, f"{cause}; here: {message}" if message else cause)


def _init_verdicts(p, zero_specs, outcome):
    promises = behaviours.RESNET["promises"]["ResNet"]
    ok, state = p.answer("init0")
    if ok and not isinstance(state, dict):
        ok, state = False, "could not read its state_dict"
    verdicts = {"conv init": _conv_std_verdict, "bn init": lambda state: _bn_verdict(state, set()),
                "fc init": _fc_verdict}
    for what, verdict in verdicts.items():
        outcome.add(f"resnet20 {promises[what]}", *(verdict(state) if ok else (False, state)))
    for i, spec in enumerate(zero_specs, start=1):
        last = "bn3" if spec.block == "bottleneck" else "bn2"
        label = f"ResNet({BLOCK_CLASS[spec.block]}, ...) {promises['zero init']} ({last})"
        ok, state = p.answer(f"init{i}")
        if ok and not isinstance(state, dict):
            ok, state = False, "could not read its state_dict"
        if not ok:
            outcome.add(label, False, state)
            continue
        zeros = {f"{prefix}.{last}.weight" for prefix, *_ in spec.blocks()}
        outcome.add(label, *_bn_verdict(state, zeros))


def _conv_std_verdict(state):
    convs = [k for k, v in state.items() if k.endswith(".weight") and isinstance(v, np.ndarray) and v.ndim == 4]
    if not convs:
        return False, "no conv weights found"
    for key in convs:
        w = state[key]
        if w.size == 0:
            return False, f"{key} holds no values"
        sigma = math.sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3]))   # fan_out = out channels x kernel
        ok, message = stats.sample_verdict(w, sigma)
        if not ok:
            return False, f"{key}: {message} (expected kaiming normal, fan_out, relu: std {sigma:.3g})"
    return True, ""


def _fc_verdict(state):
    """fc as nn.Linear made it: weight and bias uniform within 1/sqrt(in_features)."""
    weight, bias = state.get("fc.weight"), state.get("fc.bias")
    if not isinstance(weight, np.ndarray) or not isinstance(bias, np.ndarray) or weight.ndim != 2 or not weight.size:
        return False, "fc weight or bias missing"
    bound = 1 / math.sqrt(weight.shape[1])
    ok, message = stats.sample_verdict(weight, bound / math.sqrt(3), bound=bound)
    if ok and (not np.all(np.abs(bias) <= bound) or not np.any(bias)):
        ok, message = False, "fc.bias is not spread within 1/sqrt(in_features) as nn.Linear draws it"
    elif not ok:
        message = f"fc.weight: {message}"
    return ok, "" if ok else (f"{message} (leave fc as nn.Linear initialises it: re-initialise convs and BatchNorms "
                              "only)")


def _bn_verdict(state, zeros):
    bns = sorted({k.rsplit(".", 1)[0] for k in state if k.endswith(".bias")} - {"fc"})
    if not bns:
        return False, "no BatchNorm layers found"
    for key in sorted(zeros):
        if key not in state:
            return False, f"{key} missing"
    for bn in bns:
        weight, bias = state.get(f"{bn}.weight"), state.get(f"{bn}.bias")
        if not isinstance(weight, np.ndarray) or not isinstance(bias, np.ndarray):
            return False, f"{bn} weight or bias missing"
        target = 0.0 if f"{bn}.weight" in zeros else 1.0
        if not np.all(weight == target):
            return False, f"{bn}.weight is not all {target:g}"
        if not np.all(bias == 0):
            return False, f"{bn}.bias is not all 0"
    return True, ""
