"""The grader's strength, measured by a mutation tool: cosmic-ray makes the mutants of the reference solutions,
the grader graded per part is the test (a mutant is killed when its part loses points).

    .venv/bin/python scripts/mutation.py [--parts quiz initializers ...] [--jobs 2] [--seeds 10] [--sample N] [--again]
    .venv/bin/python scripts/mutation.py --report [--parts ...] [--seeds 10]
    .venv/bin/python scripts/mutation.py --coverage [--parts ...] [--seed 0]

cosmic-ray.toml names the files and the test; the mutants are cosmic-ray's (``cosmic-ray init``), kept in its
session database (build/mutation.sqlite: an interrupted run resumes, ``cr-report`` reads it). ``cosmic-ray
exec`` would run them one at a time on the files in place, each graded once; this script runs ``--jobs`` at
once, each mutant graded on its part on ``--seeds`` hidden-case seeds (0, 1, ...) by scripts/in_process.py
(the grader's plans and run loop, without a child's start-up). It prints, per file, the mutants generated,
killed on every seed, killed on some seeds only, and survived; the largest spread of a killed mutant's score
over the seeds; and each survivor's diff, with its verdict from the real sandboxed grade (grade_part.py) as a
check on the fast one (docs/grader-strength.md triages them). ``--sample N`` runs N mutants per file, spread
evenly (the same ones every time).

``--coverage`` measures the branch coverage (coverage.py) of the reference solutions under one grade's hidden
cases (the same fast grade, on the solutions' own files); the handout's given functions are left out.
"""
import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
CONFIG = REPO / "cosmic-ray.toml"
SESSION = REPO / "build" / "mutation.sqlite"
PARTS = {"layers": "layers.py", "initializers": "initializers.py", "resnet": "resnet.py", "quiz": "quiz.py"}
# Code a grade never calls: the handout gives it complete (the contract: not graded). Its mutants are skipped.
NOT_GRADED = {"layers": {"affine_forward", "affine_backward", "relu_forward", "relu_backward"}}
LIMIT = 0.5   # points: a killed mutant whose score moves more than this over the seeds is reported


def _config():
    from cosmic_ray.config import load_config
    return load_config(str(CONFIG))


def _part(spec):
    return next(part for part, file in PARTS.items() if Path(spec.module_path).name == file)


def work_items(db):
    """The session's work items, made by cosmic-ray from the configuration's files when the session is new."""
    from cosmic_ray.commands.init import init

    if not db.num_work_items:
        config = _config()
        paths = config["module-path"]
        init([REPO / p for p in ([paths] if isinstance(paths, str) else paths)], db, config.operators_config)
    return list(db.work_items)


def mutant(spec):
    """The mutated source of ``spec``'s file, or None where the operator finds nothing to change."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**(spec.operator_args or {}))
    return mutate_code((REPO / spec.module_path).read_text(), operator, spec.occurrence)


def _points(part):
    from grader.cnn.points import PARTS as POINTS
    return sum(points for _, _, points in POINTS[part][1])


def _lost(part, score):
    """Whether ``score`` is below the part's full marks."""
    return score < _points(part) - 1e-9


def test(spec, seeds=(0,)):
    """cosmic-ray's WorkResult for one mutant: its part graded on each of ``seeds``; killed when it loses points
    on any. The output is JSON: {"scores": the part's score per seed}."""
    from cosmic_ray.mutating import _make_diff
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult
    from in_process import grade_once

    mutated = mutant(spec)
    if mutated is None:
        return WorkResult(worker_outcome=WorkerOutcome.NO_TEST)
    diff = "\n".join(_make_diff((REPO / spec.module_path).read_text(), mutated, spec.module_path))
    part, file = _part(spec), Path(spec.module_path).name
    scores = [round(sum(grade_once((part, file, mutated, seed, None)).values()), 4) for seed in seeds]
    killed = _lost(part, min(scores))
    return WorkResult(worker_outcome=WorkerOutcome.NORMAL, diff=diff,
                      test_outcome=TestOutcome.KILLED if killed else TestOutcome.SURVIVED,
                      output=json.dumps({"scores": scores}))


def sandboxed(spec, seed=0):
    """The tests a mutant loses points on in the real, sandboxed grade (grade_part.py)."""
    from grade_part import lost

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, Path(spec.module_path).name).write_text(mutant(spec))
        return lost(folder, [_part(spec)], seed)


def chosen(items, parts, sample):
    """The work items of ``parts``, less those in code a grade never calls; ``sample``: that many per file."""
    by_part = {part: [] for part in parts}
    for item in items:
        spec = item.mutations[0]
        part = _part(spec)
        if part in by_part and spec.definition_name not in NOT_GRADED.get(part, ()):
            by_part[part].append(item)
    if sample:
        by_part = {part: found[::max(1, len(found) // sample)][:sample] for part, found in by_part.items()}
    return by_part


def _limit_memory():
    """A mutant that allocates without bound fails its call (MemoryError) instead of taking the machine."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def forget(session, parts):
    """Drop the results of ``parts``' mutants, so that they are graded again (the grader changed)."""
    import sqlite3

    if not session.exists():
        return
    with sqlite3.connect(session) as db:
        for part in parts:
            db.execute("DELETE FROM work_results WHERE job_id IN (SELECT job_id FROM mutation_specs WHERE "
                       "module_path LIKE ?)", (f"%{PARTS[part]}",))


def run(args):
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome
    from tqdm import tqdm

    args.session.parent.mkdir(exist_ok=True)
    if args.again:
        forget(args.session, args.parts)
    seeds = tuple(range(args.seeds))
    with use_db(str(args.session), WorkDB.Mode.create) as db:
        by_part = chosen(work_items(db), args.parts, args.sample)
        done = {r[0]: r[1] for r in db.results}
        # A result counts for as many seeds as it was graded on: asking for more seeds grades it again.
        pending = [] if args.report else [item for found in by_part.values() for item in found
                                          if item.job_id not in done or len(_scores(done[item.job_id])) < len(seeds)]
        with ProcessPoolExecutor(args.jobs, initializer=_limit_memory) as pool, \
                tqdm(total=len(pending), desc="mutants", unit="mutant") as bar:
            futures = {pool.submit(test, item.mutations[0], seeds): item for item in pending}
            for future in futures:   # in submission order: the database is written from this thread only
                db.set_result(futures[future].job_id, future.result())
                done[futures[future].job_id] = future.result()
                bar.update()
        survivors, moving = [], []
        for part, found in by_part.items():
            results = [done[item.job_id] for item in found if item.job_id in done]
            killed = [r for r in results if r.test_outcome == TestOutcome.KILLED]
            every = [r for r in killed if _lost(part, max(_scores(r)[:len(seeds)]))]
            survived = [item for item in found if item.job_id in done
                        and done[item.job_id].test_outcome == TestOutcome.SURVIVED]
            other = len(results) - len(killed) - len(survived)
            spreads = [(max(s) - min(s), r) for r in killed for s in [_scores(r)[:len(seeds)]]]
            moving += [r for spread, r in spreads if spread > LIMIT]
            print(f"{PARTS[part]}: {len(found)} mutants, {len(killed)} killed ({len(every)} on every one of "
                  f"{len(seeds)} seeds), {len(survived)} survived"
                  + (f", {other} without a test (nothing to mutate) or incompetent" if other else "")
                  + f"; killed mutants whose score moves: {sum(spread > 0 for spread, _ in spreads)}, "
                    f"largest spread {max([0.0] + [spread for spread, _ in spreads]):.2f}")
            survivors += survived
        for result in moving:
            print(f"\nMOVES by more than {LIMIT}: scores {_scores(result)}\n{result.diff}")
        for item in survivors:
            spec = item.mutations[0]
            lost = sandboxed(spec) if args.confirm else None
            verdict = "" if lost is None else (" (sandboxed grade: survives too)" if not lost else
                                                f" (sandboxed grade: KILLED, {', '.join(t.number for t in lost)})")
            print(f"\nSURVIVED {spec.module_path} {spec.definition_name} {spec.operator_name} #{spec.occurrence} "
                  f"line {spec.start_pos[0]}{verdict}\n{done[item.job_id].diff}")
    return 0


def _scores(result):
    try:
        return json.loads(result.output)["scores"]
    except (TypeError, ValueError, KeyError):   # no test ran, or a result of the older, one-seed format
        return []


def coverage(args):
    """Branch coverage of the reference solutions under one grade's hidden cases (the handout's given functions
    left out: the contract does not grade them)."""
    import coverage as coverage_py

    from grader.paths import solutions_dir
    from in_process import InProcessChild, grade_once

    folder = solutions_dir("cnn")
    InProcessChild.source = str(folder)   # the solutions' own files are imported, so coverage can name them
    measure = coverage_py.Coverage(branch=True, include=[str(folder / PARTS[part]) for part in args.parts],
                                   data_file=None)
    for names in NOT_GRADED.values():
        measure.exclude(rf"^def ({'|'.join(sorted(names))})\(")
    measure.start()
    for part in args.parts:
        grade_once((part, PARTS[part], (folder / PARTS[part]).read_text(), args.seed, None))
    measure.stop()
    total = measure.report(show_missing=True, file=sys.stdout)
    print(f"branch coverage of the reference solutions under one grade (seed {args.seed}): {total:.1f} %")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=10, help="grade each mutant on seeds 0 .. N-1")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --coverage's grade")
    parser.add_argument("--confirm", action="store_true",
                        help="grade each survivor again in the sandbox (grade_part.py), as a check")
    parser.add_argument("--sample", type=int, help="run this many mutants per file only")
    parser.add_argument("--session", type=Path, default=SESSION)
    parser.add_argument("--coverage", action="store_true", help="measure branch coverage instead")
    parser.add_argument("--report", action="store_true", help="report the session's results so far; run nothing")
    parser.add_argument("--again", action="store_true",
                        help="grade the parts' mutants again, their results so far dropped (after a grader change)")
    args = parser.parse_args()
    return coverage(args) if args.coverage else run(args)


if __name__ == "__main__":
    sys.exit(main())
