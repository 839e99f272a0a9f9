"""The grader's strength, measured by a mutation tool: cosmic-ray makes the mutants of the reference solutions,
the grader graded per part is the test (scripts/grade_part.py: a mutant is killed when its part loses points).

    .venv/bin/python scripts/mutation.py [--parts quiz initializers ...] [--jobs 2] [--seed 0] [--sample N]
    .venv/bin/python scripts/mutation.py --coverage [--parts ...] [--seed 0]

cosmic-ray.toml names the files and the test; the mutants are cosmic-ray's (``cosmic-ray init``), kept in its
session database (build/mutation.sqlite: an interrupted run resumes, ``cr-report`` reads it). ``cosmic-ray
exec`` would run them one at a time on the files in place; this script runs ``--jobs`` at once instead, each
mutant's file alone in a submission folder of its own, graded on its part only. It prints, per file, the
mutants generated, killed and survived, and each survivor's diff (docs/grader-strength.md triages them).
``--sample N`` runs N mutants per file, spread evenly (the same ones every time).

``--coverage`` measures the branch coverage (coverage.py) of the reference solutions under one grade's hidden
cases: the grade's calls are recorded, then replayed in this process by the sandbox driver's own Runner.
"""
import argparse
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


def test(spec, seed):
    """cosmic-ray's WorkResult for one mutant: its file alone in a submission, graded on its part (the
    configuration's test command, grade_part.py, run in this process)."""
    from cosmic_ray.mutating import _make_diff
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult
    from grade_part import lost

    mutated = mutant(spec)
    if mutated is None:
        return WorkResult(worker_outcome=WorkerOutcome.NO_TEST)
    diff = "\n".join(_make_diff((REPO / spec.module_path).read_text(), mutated, spec.module_path))
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, Path(spec.module_path).name).write_text(mutated)
        failed = lost(folder, [_part(spec)], seed)
    return WorkResult(worker_outcome=WorkerOutcome.NORMAL, diff=diff,
                      test_outcome=TestOutcome.KILLED if failed else TestOutcome.SURVIVED,
                      output="\n".join(f"{t.number} {t.name}: {t.score:g} / {t.max_score:g}" for t in failed))


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


def run(args):
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome
    from tqdm import tqdm

    SESSION.parent.mkdir(exist_ok=True)
    with use_db(str(args.session), WorkDB.Mode.create) as db:
        by_part = chosen(work_items(db), args.parts, args.sample)
        done = {r[0]: r[1] for r in db.results}
        pending = [item for found in by_part.values() for item in found if item.job_id not in done]
        with ProcessPoolExecutor(args.jobs) as pool, tqdm(total=len(pending), desc="mutants", unit="mutant") as bar:
            futures = {pool.submit(test, item.mutations[0], args.seed): item for item in pending}
            for future in futures:   # in submission order: the database is written from this thread only
                db.set_result(futures[future].job_id, future.result())
                done[futures[future].job_id] = future.result()
                bar.update()
        survivors = []
        for part, found in by_part.items():
            outcomes = [done[item.job_id].test_outcome for item in found if item.job_id in done]
            killed = sum(o == TestOutcome.KILLED for o in outcomes)
            survived = [item for item in found if done.get(item.job_id) is not None
                        and done[item.job_id].test_outcome == TestOutcome.SURVIVED]
            other = len(outcomes) - killed - len(survived)
            print(f"{PARTS[part]}: {len(found)} mutants, {killed} killed, {len(survived)} survived"
                  + (f", {other} without a test (nothing to mutate) or incompetent" if other else ""))
            survivors += survived
        for item in survivors:
            spec = item.mutations[0]
            print(f"\nSURVIVED {spec.module_path} {spec.definition_name} {spec.operator_name} #{spec.occurrence} "
                  f"line {spec.start_pos[0]}\n{done[item.job_id].diff}")
    return 0


def coverage(args):
    """Branch coverage of the reference solutions under one grade's hidden cases."""
    import json

    import coverage as coverage_py
    import numpy as np

    from grader.grade import grade
    from grader.paths import solutions_dir
    from grader.plan import recording
    from grader.sandbox.driver import Runner

    folder = solutions_dir("cnn")
    with tempfile.TemporaryDirectory() as recorded:
        with recording(recorded):
            grade(folder, parts=args.parts, seed=args.seed, log=lambda message: None)
        files = [str(folder / PARTS[part]) for part in args.parts]
        measure = coverage_py.Coverage(branch=True, include=files, data_file=None)
        sys.path.insert(0, str(folder))
        measure.start()
        for plan in sorted(Path(recorded).glob("*.json")):
            task = json.loads(plan.read_text())
            with np.load(plan.with_suffix(".npz"), allow_pickle=False) as data:
                inputs = {k: data[k] for k in data.files}
            sys.modules.pop(task["module"], None)
            runner = Runner({"module": task["module"], "student_dir": str(folder)}, inputs, [], None)
            runner.import_module()
            for step in task["steps"]:
                runner.run_step(step)
        measure.stop()
        total = measure.report(show_missing=True, file=sys.stdout)
    print(f"branch coverage of the reference solutions under one grade (seed {args.seed}): {total:.1f} %")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, help="run this many mutants per file only")
    parser.add_argument("--session", type=Path, default=SESSION)
    parser.add_argument("--coverage", action="store_true", help="measure branch coverage instead")
    args = parser.parse_args()
    return coverage(args) if args.coverage else run(args)


if __name__ == "__main__":
    sys.exit(main())
