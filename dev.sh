#!/usr/bin/env bash
# Set up the project's virtual environment (once) and run one of its jobs:
#   ./dev.sh demo   regenerate the handout and grade the reference solutions (with an untrained milestone.pt)
#   ./dev.sh test   run the project's tests
# The environment is built from Debian's /usr/bin/python3 where it exists: the grader's sandboxed children run
# as an unprivileged user, who cannot run an interpreter living under /root.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
# The pinned CPU build of torch goes in first: an unpinned requirement alone pulls a multi-GB CUDA build.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        base=/usr/bin/python3
        [ -x "$base" ] || base=$(command -v python3)
        echo "creating $VENV from $base"
        "$base" -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c "import grader, torch, pytest, xdist, nbclient, ipykernel, matplotlib, jsonschema, yaml, copydetect, playwright, pyseccomp, cosmic_ray, coverage" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
        "$VENV/bin/python" -m pip install --quiet -e ".[test]"
    fi
}

case "${1:-}" in
    demo)
        setup
        "$VENV/bin/python" -m grader release
        "$VENV/bin/python" scripts/demo_submission.py build/demo-submission
        "$VENV/bin/python" -m grader grade build/demo-submission --out results.json
        ;;
    test)
        setup
        shift
        "$VENV/bin/python" -m pytest -n 2 "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo | ./dev.sh test [pytest arguments]" >&2
        exit 2
        ;;
esac
