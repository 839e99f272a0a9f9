"""Make the demo's submission: the reference solutions, and a milestone.pt of the solution's resnet20 as
initialised, untrained (no GPU and no training run needed). Graded, it shows every part: the checkpoint loads
(5.1) and scores about 10 % (5.2), or, where CIFAR-10 is not in datasets/, the milestone says how to get it.

    .venv/bin/python scripts/demo_submission.py [OUT]      # default: build/demo-submission
"""
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions" / "cnn"


def main(out=REPO / "build" / "demo-submission"):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("layers.py", "initializers.py", "resnet.py", "quiz.py"):
        shutil.copy(SOLUTIONS / name, out)
    sys.path.insert(0, str(SOLUTIONS))
    import resnet

    torch.manual_seed(0)
    torch.save({"arch": "resnet20", "num_classes": 10, "state_dict": resnet.resnet20().state_dict()},
               out / "milestone.pt")
    print(f"demo submission (the solutions and an untrained resnet20 milestone.pt) in {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
