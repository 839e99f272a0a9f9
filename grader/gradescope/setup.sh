#!/usr/bin/env bash
# Gradescope runs this once, when the autograder image is built (Ubuntu 22.04, system Python 3.10).
set -euxo pipefail
apt-get update
# libseccomp2: the sandboxed children's seccomp filter (pyseccomp, from requirements.txt, binds it).
apt-get install -y --no-install-recommends python3 python3-venv python3-pip libseccomp2
python3 -m venv /autograder/venv
# The CPU build of torch: the default one carries CUDA libraries the grader never uses (several GB).
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.1,<3"
/autograder/venv/bin/pip install -r /autograder/source/requirements.txt
# CIFAR-10 for the milestone, now, so that grading never touches the network: the official archive, md5-checked,
# and the cache of uint8 arrays the grader reads the test split from.
/autograder/venv/bin/python /autograder/source/grader/cnn/cifar10.py --root /autograder/source/datasets
# Where the kernel has no Landlock, file permissions keep the forbidden libraries from the layers child: only a
# child with group 64999 (grader.sandbox.identity.LIBRARY_GID; the ResNet one) may read them. This venv is the
# autograder's own, set up once, here: the grader itself never changes the environment it runs from.
SITE=$(/autograder/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
for package in torch functorch torchgen torchvision tensorflow jax jaxlib scipy/signal scipy/ndimage; do
    if [ -d "$SITE/$package" ]; then
        chown root:64999 "$SITE/$package"
        chmod 750 "$SITE/$package"
    fi
done
chmod 755 /autograder/venv
chmod -R go-rwx /autograder/source
