"""Exit status 0 when SUBMISSION keeps full marks on the given parts, 1 when it loses points: the grader as a
test command (cosmic-ray.toml's; scripts/mutation.py calls ``lost`` in its own processes).

    python scripts/grade_part.py SUBMISSION --part quiz [--part layers ...] [--seed N]
"""
import argparse
import sys

from grader.grade import grade
from grader.sandbox import Limits

# Limits well above the grader's: on a loaded machine a timeout must not pass for a killed mutant. A mutant that
# hangs still ends: its calls time out, then the part's budget for hung calls runs out.
LIMITS = Limits(wall_seconds=300, call_seconds=10, import_seconds=60, hang_seconds=30)


def lost(submission, parts, seed=0):
    """The tests of ``parts`` that ``submission`` loses points on, graded with hidden-case seed ``seed``."""
    tests, _ = grade(submission, parts=parts, seed=seed, limits=LIMITS, log=lambda message: None)
    return [t for t in tests if t.score < t.max_score - 1e-9]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission")
    parser.add_argument("--part", action="append", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    failed = lost(args.submission, args.part, args.seed)
    for t in failed:
        print(f"{t.number} {t.name}: {t.score:g} / {t.max_score:g}\n{t.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
