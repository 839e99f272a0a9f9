"""convlab's harness: release the handout, grade submissions, package both for Gradescope."""
__version__ = "0.1.0"
