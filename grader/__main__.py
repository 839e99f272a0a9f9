import os

# Gradescope gives half a CPU: BLAS and OpenMP thread pools only contend there. Set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from grader.cli import main  # noqa: E402

raise SystemExit(main())
