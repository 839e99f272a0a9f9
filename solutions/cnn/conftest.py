"""Lets the public tests import your files (layers.py, ...) when you run `pytest` in this folder."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
