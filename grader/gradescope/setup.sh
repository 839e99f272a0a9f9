#!/usr/bin/env bash
# Gradescope runs this once, when the autograder image is built (Ubuntu 22.04, system Python 3.10).
set -euxo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -m venv /autograder/venv
# The CPU build of torch: the default one carries CUDA libraries the grader never uses (several GB).
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.1,<3"
/autograder/venv/bin/pip install -r /autograder/source/requirements.txt
# CIFAR-10 for the milestone, now, so that grading never touches the network: the official archive, md5-checked,
# and the cache of uint8 arrays the grader reads the test split from.
/autograder/venv/bin/python /autograder/source/grader/cnn/cifar10.py --root /autograder/source/datasets
chmod 755 /autograder/venv
chmod -R go-rwx /autograder/source
