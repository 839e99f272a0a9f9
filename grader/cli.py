"""Command line: ``python -m grader {release,grade,regrade,gradescope,small-cifar,build} ...`` (also installed as
``convlab``)."""
import argparse
import contextlib
import sys

from grader import similarity
from grader.assignments import DEFAULT, get_assignment


def _error(args, message, status=2):
    print(f"convlab {args.command}: error: {message}", file=sys.stderr)
    return status


def _sandbox_refused(args):
    """Exit status 1 and the instructor's one line where no child can start here (a grade would be all zeros
    that blame the student) or none can be contained (unless ``--unconfined``); None when grading can go ahead,
    after one line for staff on what protects the run."""
    from grader import preflight

    found = preflight.check()
    refused = preflight.refusal(found, args.unconfined)
    if refused:
        return _error(args, refused, status=1)
    args.containment = found.line()   # for results.json and every regrade log too
    print(args.containment)
    return None


def _unknown_parts(args):
    unknown = sorted(set(args.part or ()) - set(args.spec.parts))
    return _error(args, f"no part {', '.join(unknown)} (parts: {', '.join(args.spec.parts)})") if unknown else None


def _release(args):
    from grader.release import release

    changed = release(args.assignment)
    if changed:
        print(f"assignments/{args.assignment}: {len(changed)} file(s) written or removed:")
        for rel in changed:
            print(f"  {rel}")
    else:
        print(f"assignments/{args.assignment}: already in sync with solutions/{args.assignment}")
    return 0


def _grade(args):
    import textwrap
    from pathlib import Path

    from tqdm import tqdm

    from grader.grade import gradescope_metadata, grade_to_file
    from grader.plan import recording
    from grader.results import table
    from grader.review import lines as review_lines

    if not Path(args.submission).exists():
        return _error(args, f"no such file or folder: {args.submission}")
    if (problem := _unknown_parts(args)) is not None:
        return problem
    if (refused := _sandbox_refused(args)) is not None:
        return refused
    metadata = gradescope_metadata(args.metadata) if args.metadata else None
    with recording(args.dump_cases) if args.dump_cases else contextlib.nullcontext():
        tests, extra = grade_to_file(args.submission, args.out, args.assignment, metadata=metadata,
                                     parts=args.part, seed=args.seed, containment=args.containment,
                                     log=lambda message: tqdm.write(message, file=sys.stderr))
    if args.dump_cases:
        print(f"hidden cases (calls as JSON, inputs as npz, prints as .out) written to {args.dump_cases}/")
    if args.verbose:   # the rule each test's sum in its feedback follows, once
        print(textwrap.fill(args.spec.scoring, 100) + "\n")
    print(table(tests, verbose=args.verbose))
    print(extra["output"])
    for line in review_lines(extra["extra_data"]["review"]):
        print(f"for review (TA, no points): {line}")
    print(f"results written to {args.out}")
    return 0


def _build(args):
    from grader.package import PackageError, build

    try:
        handout, autograder = build(args.assignment, args.out)
    except PackageError as error:
        return _error(args, error, status=1)
    for path in (handout, autograder):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


def _regrade(args):
    from pathlib import Path

    from grader.oracle import close_all
    from grader.regrade import ExportError, regrade

    if not Path(args.export).exists():
        return _error(args, f"no such export (a zip or a folder): {args.export}")
    if (problem := _unknown_parts(args)) is not None:
        return problem
    if args.jobs is not None and args.jobs < 1:
        return _error(args, "--jobs must be at least 1")
    if not 0 < args.similarity <= 1:
        return _error(args, "--similarity is a share of the code: above 0, at most 1")
    if (refused := _sandbox_refused(args)) is not None:
        return refused
    close_all()   # the preflight's oracle child: each grading process starts its own
    try:
        rows = regrade(args.export, args.out, args.assignment, args.part, args.jobs, args.similarity,
                       containment=args.containment)
    except ExportError as error:
        return _error(args, error, status=1)
    graded = len({row["submission"] for row in rows})
    print(f"{graded} submission(s) regraded: results, scores.csv, similarity.csv and report.html in {args.out}/")
    return 0


def _small_cifar(args):
    from pathlib import Path

    from grader.cnn.cifar10 import val_size
    from grader.cnn.small_cifar import seconds_per_step, write_cifar

    write_cifar(args.folder, per_batch=args.per_batch, test=args.test)
    data = Path(args.folder).resolve()
    env = f"CONVLAB_DATA={data} CONVLAB_DATA_UNVERIFIED=1"
    epochs, batch_size = 6, 16
    steps = -(-(5 * args.per_batch - val_size(5 * args.per_batch)) // batch_size)   # train.py's steps an epoch
    epoch = steps * seconds_per_step("resnet20", batch_size)
    print(f"wrote a small CIFAR-10 in the official format to {data}/ ({5 * args.per_batch:,} training and "
          f"{args.test:,} test images, each class a colour plus noise). Its md5s are not the official ones, so "
          "the loader takes it only with CONVLAB_DATA_UNVERIFIED=1. Try the milestone with it:\n"
          f"  {env} python train.py --arch resnet20 --epochs {epochs} --batch-size {batch_size} --lr 0.05 "
          "--amp off\n"
          f"    (in a copy of the handout whose resnet.py is finished; measured on this machine's CPU, an epoch "
          f"of {steps} steps takes about {epoch:.0f} s, the {epochs} epochs {epochs * epoch / 60:.1f} min), then\n"
          f"  {env} python -m grader grade SUBMISSION   (a folder holding that milestone.pt)\n"
          "On this data the grader checks that a network earned its accuracy by comparing its accuracy on the test "
          "images with that on training images only: the check against the best accuracy published for its "
          "architecture is off, as it holds for the official CIFAR-10 alone (its md5s checked). A network that "
          "learnt the colours scores near 100 %, and is not flagged for it.")
    return 0


def _gradescope(args):
    from pathlib import Path

    from grader import local_gradescope

    for path, what in ((args.submission, "no such file or folder"), (args.zip, "no such autograder zip"),
                       (args.metadata, "no such metadata file")):
        if path and not Path(path).exists():
            return _error(args, f"{what}: {path}")
    status, written = local_gradescope.run(args.submission, args.out, args.assignment, args.zip, args.metadata)
    if not written:
        return _error(args, f"run_autograder exited with status {status} and wrote no results.json (its output "
                            "above says why)", status=1)
    kept = Path(args.out).resolve()
    print(f"Gradescope's results.json kept as {kept} (the emulated /autograder was a temporary folder, now removed)")
    if hint := local_gradescope.no_data_hint(kept):
        print(hint)
    return status


UNCONFINED_HELP = "grade even where the children cannot be confined (no seccomp): student code then runs with " \
                  "this user's rights"


def build_parser():
    parser = argparse.ArgumentParser(prog="convlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    release = commands.add_parser("release", help="regenerate assignments/A/ from solutions/A/")
    release.add_argument("assignment", nargs="?", default=DEFAULT)
    release.set_defaults(run=_release)

    grade = commands.add_parser("grade", help="grade a submission folder or zip; write results.json")
    grade.add_argument("submission", help="a folder or a zip of the submitted files")
    grade.add_argument("--assignment", default=DEFAULT)
    grade.add_argument("--out", default="results.json", help="where to write Gradescope's results.json")
    grade.add_argument("--part", action="append", help="grade only this part (repeatable)")
    grade.add_argument("--metadata", help="Gradescope's submission_metadata.json (its id joins the seed)")
    grade.add_argument("--seed", type=int, help="use this hidden-case seed (results.json: extra_data.seed)")
    grade.add_argument("--dump-cases", metavar="DIR",
                       help="TA: also write the hidden cases (calls and input values) to DIR")
    grade.add_argument("--verbose", action="store_true",
                       help="staff: how a test's cases make its points, then every test's whole feedback under its row")
    grade.add_argument("--unconfined", action="store_true", help=UNCONFINED_HELP)
    grade.set_defaults(run=_grade)

    regrade = commands.add_parser("regrade", help="grade every submission of a Gradescope export")
    regrade.add_argument("export", help="Gradescope's export zip, its folder (or the folder above it), or a "
                                        "folder of submissions (folders or zips)")
    regrade.add_argument("--assignment", default=DEFAULT)
    regrade.add_argument("--out", default="regrade", help="output folder (default: regrade)")
    regrade.add_argument("--part", action="append", help="grade only this part (repeatable)")
    regrade.add_argument("--jobs", type=int, help="submissions graded at once, each in a process of its own "
                                                  "(default: the cores this process may use)")
    regrade.add_argument("--similarity", type=float, metavar="SHARE", default=similarity.THRESHOLD,
                         help="list the pairs of files that share at least this share of their code "
                              f"(default {similarity.THRESHOLD})")
    regrade.add_argument("--unconfined", action="store_true", help=UNCONFINED_HELP)
    regrade.set_defaults(run=_regrade)

    gradescope = commands.add_parser("gradescope", help="run an autograder zip on a submission as Gradescope would")
    gradescope.add_argument("submission", help="a folder or a zip of the submitted files")
    gradescope.add_argument("--assignment", default=DEFAULT)
    gradescope.add_argument("--zip", help="the autograder zip to run (default: one built from this checkout)")
    gradescope.add_argument("--out", default="results.json", help="where to keep Gradescope's results.json")
    gradescope.add_argument("--metadata", help="a submission_metadata.json to use (default: a stand-in, id 1)")
    gradescope.set_defaults(run=_gradescope)

    small = commands.add_parser("small-cifar", help="write a small CIFAR-10 (official format) to try the "
                                                    "milestone without the real data")
    small.add_argument("folder", help="where to write cifar-10-python.tar.gz")
    small.add_argument("--per-batch", type=int, default=200, help="images per training batch (five batches)")
    small.add_argument("--test", type=int, default=500, help="test images")
    small.set_defaults(run=_small_cifar, assignment=DEFAULT)

    build = commands.add_parser("build", help="write DIR/A-handout.zip and DIR/A-autograder.zip")
    build.add_argument("assignment", nargs="?", default=DEFAULT)
    build.add_argument("--out", default="dist", help="output folder (default: dist)")
    build.set_defaults(run=_build)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.spec = get_assignment(args.assignment)
    except LookupError as error:
        parser.error(str(error))
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
