"""The assignment ``cnn``: convolutional networks."""
from grader.assignments import Assignment
from grader.cnn import points

ASSIGNMENT = Assignment(
    name="cnn",
    title="Convolutional Networks",
    handout_extras={
        "tests/torch_reference.py": "grader/cnn/oracles/layers.py",
        "tests/compare.py": "grader/compare.py",
        "cifar10.py": "grader/cnn/cifar10.py",
        "gradcheck.py": "grader/cnn/gradcheck.py",
        "submission_rules.py": "grader/cnn/rules.py",
    },
    parts=points.PARTS,
    checkers={"layers": "grader.cnn.check_layers", "initializers": "grader.cnn.check_initializers",
              "resnet": "grader.cnn.check_resnet", "quiz": "grader.cnn.check_quiz",
              "milestone": "grader.cnn.check_milestone"},
    visibility=points.VISIBILITY,
    visibility_of_test=points.VISIBILITY_OF_TEST,
    show_cases=points.SHOW_CASES,
    scoring=points.SCORING,
)
