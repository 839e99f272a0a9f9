"""Every documented behaviour that a grade checks, every time: read off the contract (/work/shared/contract.md)
and the solutions' docstrings, kept here, in one place, as data the checkers read.

For each graded function: its keywords with their documented defaults (each is left out once, the others given
away from their defaults, so the default alone decides the result) and their edge values (given explicitly:
0 where 0 is allowed, so a ``value or default`` slip shows); the errors it documents; and the other promises
a hidden case keeps (fresh entropy for ``rng=None``, zeros for absent running statistics...). Labels are the
words a student reads in the feedback. ``NOT_CHECKED`` lists what a grade leaves out, and why.

tests/test_behaviours.py holds the checkers to this list (tests/test_check_resnet.py for ``RESNET``): every entry
appears as a case in a grade of the reference solutions, and every default here is the one the solution's
signature (or docstring) states.
"""
from dataclasses import dataclass

from grader.checks import CATEGORY, Kind
from grader.cnn.points import BEHAVIOUR_WEIGHT

BEHAVIOUR = Kind("documented behaviour", "documented behaviours", BEHAVIOUR_WEIGHT)
# A default that the everyday call relies on: where it is wrong, what is built on the function breaks, not an edge
# of it, so its case weighs like a category. Which keywords are everyday (``Keyword.everyday``), and why:
# - bn_param's optional keys: the notebook calls both batchnorm forwards with {"mode": "train"} alone, and
#   spatial_batchnorm_forward hands its bn_param on to the student's batchnorm_forward;
# - the initializers' mode: activation_stds's documented init, ``kaiming_normal(shape, rng=rng)``, and the
#   notebook's Kaiming init leave it out; so does the usual ``xavier_normal(shape)``, Glorot's own fan_avg
#   (PyTorch's xavier_normal_ has no other);
# - conv_layer's bias and pool_layer's pad: alexnet_table calls them with ALEXNET_LAYERS's settings, which leave
#   both out.
# Not everyday: rng (activation_stds always passes one), conv_output_size's and pool_output_size's stride and pad
# (conv_layer and pool_layer pass every argument on), and every edge value. The defaults the layouts leave out in
# every grade (the initializers' gain and nonlinearity, calculate_gain's param, activation_stds's batch, ResNet's
# keywords) are categories already.
EVERYDAY_DEFAULT = Kind("everyday default", "everyday defaults", CATEGORY.weight)


@dataclass(frozen=True)
class Keyword:
    name: str
    default: object          # the documented default; "zeros" for arrays of zeros
    edges: tuple = ()        # values given explicitly as well: the ones a ``value or default`` slip mistakes
    everyday: bool = False   # the everyday call leaves it out (EVERYDAY_DEFAULT)

    def left_out(self):
        return f"{self.name} left out (default {self.default})"

    @property
    def left_out_kind(self):
        """What the case leaving it out weighs as."""
        return EVERYDAY_DEFAULT if self.everyday else BEHAVIOUR

    def edge(self, value):
        return f"{self.name} given as {value!r}"


BN_KEYWORDS = (Keyword("eps", 1e-5, (0.0,), everyday=True), Keyword("momentum", 0.9, (0.0,), everyday=True),
               Keyword("running_mean", "zeros", everyday=True), Keyword("running_var", "zeros", everyday=True))

# function -> its keywords (for batchnorm: bn_param's optional keys).
KEYWORDS = {
    "batchnorm_forward": BN_KEYWORDS,
    "spatial_batchnorm_forward": BN_KEYWORDS,
    "calculate_gain": (Keyword("param", None, (0.0,)),),
    "xavier_normal": (Keyword("gain", 1.0, (0.0,)), Keyword("mode", "fan_avg", everyday=True), Keyword("rng", None)),
    "xavier_uniform": (Keyword("gain", 1.0, (0.0,)), Keyword("mode", "fan_avg", everyday=True), Keyword("rng", None)),
    "kaiming_normal": (Keyword("mode", "fan_in", everyday=True), Keyword("nonlinearity", "relu"), Keyword("rng", None)),
    "kaiming_uniform": (Keyword("mode", "fan_in", everyday=True), Keyword("nonlinearity", "relu"),
                        Keyword("rng", None)),
    "activation_stds": (Keyword("batch", 16), Keyword("rng", None)),
    "conv_output_size": (Keyword("stride", 1), Keyword("pad", 0, (0,))),
    "pool_output_size": (Keyword("pad", 0, (0,)),),
    "conv_layer": (Keyword("stride", 1), Keyword("pad", 0, (0,)), Keyword("bias", True, (False,), everyday=True)),
    "pool_layer": (Keyword("pad", 0, (0,), everyday=True),),
}

# function -> {what: label}: each documented ValueError, raised on a bad input.
ERRORS = {
    "batchnorm_forward": {"mode": 'a mode other than "train" or "test" raises ValueError'},
    "spatial_batchnorm_forward": {"mode": 'a mode other than "train" or "test" raises ValueError'},
    "fan_in_and_fan_out": {"rank": "a rank other than 2 or 4 raises ValueError"},
    "calculate_gain": {"nonlinearity": "an unknown nonlinearity raises ValueError"},
    **{name: {"mode": "an unknown mode raises ValueError", "rank": "a rank-3 shape raises ValueError"}
       for name in ("xavier_normal", "xavier_uniform")},
    **{name: {"mode": "an unknown mode raises ValueError", "rank": "a rank-3 shape raises ValueError",
              "nonlinearity": "an unknown nonlinearity raises ValueError"}
       for name in ("kaiming_normal", "kaiming_uniform")},
    "activation_stds": {"nonlinearity": "an unknown nonlinearity raises ValueError"},
}

RNG = {   # the promises of an ``rng`` argument
    "none": "rng left out twice (None: fresh entropy, the two calls differ)",
    "same seed": "the same int seed twice gives the same array",
    "other seed": "different int seeds give different arrays",
    "generator": "a Generator passed in is used (two calls with it differ)",
}
# function -> {what: label}: the other documented promises.
PROMISES = {
    **{name: {"test without statistics": "test mode without running statistics (zeros, as documented)",
              "float32": "float32 input (float32 tolerance)"}
       for name in ("batchnorm_forward", "spatial_batchnorm_forward")},
    **{name: RNG for name in ("xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform")},
    "activation_stds": {"none": RNG["none"].replace("array", "stds"),
                        "generator": "rng given as a Generator, two calls with it"},
}

NOT_CHECKED = {
    ("activation_stds", "dims"): "the default (4096,) * 7 draws 100 million values (seconds, and 270 MB in the "
                                 "child); the public tests call it with its default",
}

# The ResNet part's documented behaviours, read by grader/cnn/check_resnet.py: every block with every stem, the
# defaults of the blocks, of ResNet and of the factories, fc's initialisation, the documented errors.
RESNET = {
    "blocks": ("BasicBlock", "Bottleneck", "PreActBlock"),
    "stems": ("cifar", "imagenet"),
    "keywords": {
        "BasicBlock": (Keyword("stride", 1),),
        "Bottleneck": (Keyword("stride", 1),),
        "PreActBlock": (Keyword("stride", 1),),
        "ResNet": (Keyword("num_classes", 10), Keyword("widths", (64, 128, 256, 512)), Keyword("stem", "cifar"),
                   Keyword("zero_init_residual", False, (True,))),
        **{name: (Keyword("num_classes", 10),) for name in ("resnet20", "resnet32", "resnet56", "preact_resnet18")},
        **{name: (Keyword("num_classes", 10), Keyword("stem", "cifar"))
           for name in ("resnet18", "resnet34", "resnet50")},
    },
    # Each block's cases, one per category on every draw. A shortcut needs its projection whenever the channels
    # change, narrowing included (a mutant testing in_channels < out_channels survives cases that only widen).
    "shapes": ("stride left out (default 1), channels kept", "stride 1, channels widened",
               "stride 1, channels narrowed", "stride 2, channels kept", "stride 2, channels widened"),
    "errors": {"ResNet": {"stem": "an unknown stem raises ValueError",
                          "widths": "layers and widths of different lengths raise ValueError"}},
    "promises": {
        "ResNet": {"fc init": "fc keeps PyTorch's default initialisation (uniform within 1/sqrt(in_features))",
                   "conv init": "conv weights: kaiming normal (fan_out, relu)",
                   "bn init": "BatchNorm weight 1 and bias 0",
                   "zero init": "zero_init_residual=True: every block's last BatchNorm weight 0"},
    },
}

def raised(ok, value, error="ValueError"):
    """(ok, message) for a call that should have raised ``error``, from the plan's answer ``(ok, value)``."""
    if ok:
        return False, f"returned a value; expected it to raise {error}"
    if value.startswith(error):
        return True, ""
    return False, f"expected {error}, got: {value}"


def add_gated(outcome, label, ok, message=""):
    """Add a promise that code doing nothing keeps too (raising a documented error, leaving its arguments
    alone) to ``outcome``, after its other cases: it is credited only where some other case passed, else it
    fails as they did."""
    if ok and not any(c.ok for c in outcome.cases):
        ok, message = False, next((c.message for c in outcome.cases if not c.ok), "")
    outcome.add(label, ok, message, BEHAVIOUR)


def add_error(outcome, label, answer, error="ValueError"):
    """Add the case of a documented error, from the plan's answer to the call that should raise it."""
    add_gated(outcome, label, *raised(*answer, error))
