"""How much a bug's score depends on the hidden cases' seed: grade buggy variants of the reference solutions
on several seeds and print, per bug, its part's score on each seed and the spread (largest minus smallest).

    .venv/bin/python scripts/spread.py [--seeds 10] [--jobs 2] [--only WORD...] [--skip WORD...] [--out FILE]

The bugs: the hand-written mutants of the tests (tests/test_grading_layers.py, test_strata_bugs.py,
test_check_initializers.py, test_check_quiz.py) and the realistic slips of ``SLIPS`` below. The grader graded is
whichever ``grader`` package the interpreter imports: run it with another checkout's interpreter (``cd
/work/main && .venv/bin/python /path/to/this/scripts/spread.py``) to measure that checkout with the same bugs.
(``--sandboxed``: a checkout older than scripts/in_process.py supports; put it first on PYTHONPATH.) A bug whose
spread exceeds 0.5 points is marked MOVES, unless ``VALUE_DEPENDENT`` lists it with its reason.
"""
import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from in_process import grade_once

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

LIMIT = 0.5   # points
ORDER = ["quiz", "layers", "initializers", "resnet"]
BASIC_RETURN = "        return F.relu(out + shortcut)\n        # END SOLUTION\n\n\nclass Bottleneck"

# Realistic slips of our own, beyond the tests' mutants: (name, file, the layers function edited or None,
# [(old, new)]), each ``old`` unique in the reference solution.
SLIPS = [
    ("batchnorm eps taken with `or` (eps 0 given becomes 1e-5)", "layers.py", "batchnorm_forward",
     [('eps = bn_param.get("eps", 1e-5)', 'eps = bn_param.get("eps") or 1e-5')]),
    ("batchnorm momentum taken with `or` (momentum 0 given becomes 0.9)", "layers.py", "batchnorm_forward",
     [('momentum = bn_param.get("momentum", 0.9)', 'momentum = bn_param.get("momentum") or 0.9')]),
    ("batchnorm needs the running statistics in bn_param", "layers.py", "batchnorm_forward",
     [('running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))',
       'running_mean = bn_param["running_mean"]')]),
    ("avg pool forward divides by PH * PH", "layers.py", "avg_pool_forward_naive",
     [("out[:, :, i, j] = x[:, :, i * S:i * S + PH, j * S:j * S + PW].mean(axis=(2, 3))",
       "out[:, :, i, j] = x[:, :, i * S:i * S + PH, j * S:j * S + PW].sum(axis=(2, 3)) / (PH * PH)")]),
    ("conv forward W_out from H", "layers.py", "conv_forward_naive",
     [("    W_out = 1 + (W + 2 * P - WW) // S\n    xp = np.pad(x,", "    W_out = 1 + (H + 2 * P - WW) // S\n    xp = np.pad(x,")]),
    ("fan_avg floor-divided", "initializers.py", None,
     [('"fan_avg": (fan_in + fan_out) / 2}', '"fan_avg": (fan_in + fan_out) // 2}')]),
    ("xavier_normal's default mode fan_in", "initializers.py", None,
     [('def xavier_normal(shape, gain=1.0, mode="fan_avg", rng=None):',
       'def xavier_normal(shape, gain=1.0, mode="fan_in", rng=None):')]),
    ("xavier_normal ignores the gain", "initializers.py", None,
     [("std = gain / np.sqrt(_fan(shape, mode))", "std = 1.0 / np.sqrt(_fan(shape, mode))")]),
    ("kaiming_normal always relu", "initializers.py", None,
     [("std = calculate_gain(nonlinearity) / np.sqrt(_fan(shape, mode))",
       'std = calculate_gain("relu") / np.sqrt(_fan(shape, mode))')]),
    ("rng None seeded with 0", "initializers.py", None,
     [("    return np.random.default_rng(rng)", "    return np.random.default_rng(0 if rng is None else rng)")]),
    ("xavier_uniform gain taken with `or`", "initializers.py", None,
     [("bound = gain * np.sqrt(3.0 / _fan(shape, mode))", "bound = (gain or 1.0) * np.sqrt(3.0 / _fan(shape, mode))")]),
    ("conv_output_size rounds to the nearest", "quiz.py", None,
     [("def conv_output_size(size, kernel, stride=1, pad=0):", "def conv_output_size(size, kernel, stride=1, pad=0):\n"
       "    return round((size - kernel + 2 * pad) / stride) + 1")]),
    ("pool flops without the window size", "quiz.py", None,
     [('"flops": outputs * kernel * kernel,\n    }\n    # END SOLUTION\n\n\ndef fc_layer',
       '"flops": outputs,\n    }\n    # END SOLUTION\n\n\ndef fc_layer')]),
    ("conv_layer bias off by default", "quiz.py", None,
     [("def conv_layer(c_in, size, filters, kernel, stride=1, pad=0, bias=True):",
       "def conv_layer(c_in, size, filters, kernel, stride=1, pad=0, bias=False):")]),
    ("conv_output_size counts the padding once", "quiz.py", None,
     [("def conv_output_size(size, kernel, stride=1, pad=0):", "def conv_output_size(size, kernel, stride=1, pad=0):\n"
       "    return (size - kernel + pad) // stride + 1")]),
    ("BasicBlock: relu before the addition", "resnet.py", None,
     [(BASIC_RETURN, BASIC_RETURN.replace("F.relu(out + shortcut)", "F.relu(out) + shortcut"))]),
    ("BasicBlock: adds into the identity shortcut in place", "resnet.py", None,
     [(BASIC_RETURN, BASIC_RETURN.replace("return F.relu(out + shortcut)",
                                          "shortcut += out\n        return F.relu(shortcut)"))]),
    ("BasicBlock: detached shortcut", "resnet.py", None,
     [(BASIC_RETURN, BASIC_RETURN.replace("out + shortcut", "out + shortcut.detach()"))]),
    ("Bottleneck: projection at stride 2 only", "resnet.py", None,
     [("self.bn3 = nn.BatchNorm2d(out_channels)\n        self.downsample = None\n        if stride != 1 or "
       "in_channels != out_channels:\n", "self.bn3 = nn.BatchNorm2d(out_channels)\n        self.downsample = None\n"
       "        if stride != 1:\n")]),
    ("PreActBlock: shortcut projects the raw input", "resnet.py", None,
     [("shortcut = x if self.downsample is None else self.downsample(a)",
       "shortcut = x if self.downsample is None else self.downsample(x)")]),
    ("PreActBlock: no projection where channels narrow", "resnet.py", None,
     [("        if stride != 1 or in_channels != out_channels:\n            self.downsample = nn.Conv2d(",
       "        if stride != 1 or in_channels < out_channels:\n            self.downsample = nn.Conv2d(")]),
    ("ResNet: stem without its ReLU", "resnet.py", None, [("x = F.relu(self.bn1(x))", "x = self.bn1(x)")]),
    ("ResNet: centres its input in place", "resnet.py", None,
     [("        x = self.conv1(x)\n", "        x -= x.mean()\n        x = self.conv1(x)\n")]),
    ("ResNet: kaiming with fan_in", "resnet.py", None,
     [('kaiming_normal_(m.weight, mode="fan_out"', 'kaiming_normal_(m.weight, mode="fan_in"')]),
    ("ResNet: re-initialises fc too", "resnet.py", None,
     [("            if isinstance(m, nn.Conv2d):\n", "            if isinstance(m, (nn.Conv2d, nn.Linear)):\n")]),
    ("ResNet: num_classes 100 by default", "resnet.py", None,
     [("    def __init__(self, block, layers, num_classes=10,", "    def __init__(self, block, layers, num_classes=100,")]),
    ("ResNet: any stem accepted", "resnet.py", None,
     [('        if stem not in ("cifar", "imagenet"):\n            raise ValueError',
       '        if stem is None:\n            raise ValueError')]),
]

# Bugs whose cost depends on the drawn values by nature, and why: none left. (The floored fan_avg, a 0.1 %
# change of the std, is caught by the uniform initializers' bound on every seed: the hidden fans' sums are odd.)
VALUE_DEPENDENT = {}


def _reference(file):
    from grader.paths import solutions_dir
    return (solutions_dir("cnn") / file).read_text()


def _replaced(source, edits):
    for old, new in edits:
        if source.count(old) != 1:
            raise ValueError(f"{old!r} occurs {source.count(old)} times")
        source = source.replace(old, new)
    return source


def _functions(edits):
    """The layers functions a bug's edits touch, and the spatial ones that call them."""
    touched = {edit[0] for edit in edits}
    return touched | {f"spatial_{name}" for name in touched}


def bugs():
    """[(name, part, file, source, functions)] for every bug; ``functions``: the layers functions its edits
    touch (only their families are graded), None for every function of the part. The tests' mutants are left
    out where their modules cannot be imported with the grader measured (an older checkout's)."""
    def tests_of(module):
        try:
            return __import__(module)
        except ImportError as error:
            print(f"{module}'s bugs left out: {error}", file=sys.stderr)
            return None

    found = []
    if (tl := tests_of("test_grading_layers")) is not None:
        found += [(f"layers: {name}", "layers", "layers.py", tl.apply(edits), _functions(edits))
                  for name, (edits, _) in tl.BUGS.items()]
        found += [(f"layers: in place, test {n}", "layers", "layers.py", tl.apply(edits), _functions(edits))
                  for n, edits in tl.IN_PLACE.items()]
        if (ts := tests_of("test_strata_bugs")) is not None:
            found += [(f"layers: stratum {name}", "layers", "layers.py", tl.apply(edits), _functions(edits))
                      for name, (_, edits) in ts.BUGS.items()]
    if (ti := tests_of("test_check_initializers")) is not None:
        found += [(f"initializers: {name}", "initializers", "initializers.py", ti.variant(*replacements), None)
                  for name, replacements, _ in ti.VARIANTS]
    if (tq := tests_of("test_check_quiz")) is not None:
        found += [(f"quiz: {name}", "quiz", "quiz.py", tq.variant(old, new, occurrence), None)
                  for name, old, new, occurrence, _ in tq.VARIANTS]
    parts = {"layers.py": "layers", "initializers.py": "initializers", "quiz.py": "quiz", "resnet.py": "resnet"}
    found += [(f"{parts[file]}: {name}", parts[file], file, _replaced(_reference(file), edits),
               _functions([(function,)]) if function else None)
              for name, file, function, edits in SLIPS]
    return found


def _points():
    from grader.cnn.points import PARTS
    return {number: points for _, tests in PARTS.values() for number, _, points in tests}


POINTS = _points()


def grade_sandboxed(job):
    """grade_once's answer from the grader as it grades a submission (sandboxed children, default limits): for a
    checkout older than the in-process grade supports."""
    from grader.grade import grade

    part, file, source, seed, _ = job
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, file).write_text(source)
        tests, _ = grade(folder, parts=[part], seed=seed, log=lambda message: None)
    return {t.number: t.score for t in tests}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", nargs="+", help="grade only the bugs whose name contains one of these")
    parser.add_argument("--skip", nargs="+", default=[], help="leave out the bugs whose name contains one of these")
    parser.add_argument("--out", help="write every score here (JSON)")
    parser.add_argument("--sandboxed", action="store_true", help="grade in the sandbox, as a submission is graded")
    args = parser.parse_args()

    chosen = [bug for bug in bugs() if (not args.only or any(word in bug[0] for word in args.only))
              and not any(word in bug[0] for word in args.skip)]
    chosen.sort(key=lambda bug: ORDER.index(bug[1]))   # the cheapest parts first
    jobs = [(part, file, source, seed, functions) for _, part, file, source, functions in chosen
            for seed in range(args.seeds)]
    results, moving, per_seed = {}, [], []
    with ProcessPoolExecutor(args.jobs) as pool:
        # Said, and written out, as each bug's seeds are in: an interrupted run keeps what it measured.
        for scores in tqdm(pool.map(grade_sandboxed if args.sandboxed else grade_once, jobs), total=len(jobs), desc="grading", unit="grade"):
            per_seed.append(scores)
            if len(per_seed) < args.seeds:
                continue
            name = chosen[len(results)][0]
            moves = _report(name, per_seed, results)
            moving += [name] if moves else []
            per_seed = []
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\n{len(chosen)} bugs on {args.seeds} seeds: {sum(r['spread'] > 0 for r in results.values())} with a "
          f"score that moves, {len(moving)} by more than {LIMIT} points (not value-dependent by nature); largest "
          f"spread {max(r['spread'] for r in results.values()):.2f}; "
          f"{sum(not any(t < POINTS[n] - 1e-9 for s in r['tests'] for n, t in s.items()) for r in results.values())}"
          " keep full marks on every seed")
    return 1 if moving else 0


def _report(name, per_seed, results):
    """Print one bug's scores and spread, add them to ``results``; True when it moves more than LIMIT for no
    reason of VALUE_DEPENDENT's."""
    totals = [round(sum(s.values()), 4) for s in per_seed]
    spread = max(totals) - min(totals)
    lost = {n for s in per_seed for n, v in s.items() if v < POINTS[n] - 1e-9}
    results[name] = {"totals": totals, "spread": spread, "tests": per_seed}
    reason = VALUE_DEPENDENT.get(name.split(": ", 1)[1])
    flag = ("value-dependent: " + reason if reason else "MOVES") if spread > LIMIT else ""
    print(f"{name}\n    {' '.join(f'{t:6.2f}' for t in totals)}   spread {spread:.2f}"
          f"{'   tests ' + ', '.join(sorted(lost)) if lost else '   keeps full marks'}{'   ' + flag if flag else ''}",
          flush=True)
    return flag == "MOVES"


if __name__ == "__main__":
    sys.exit(main())
