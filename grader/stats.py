"""Is a sample of weights drawn with the intended distribution? Tolerances derived from the sample size.

At SIGMAS standard errors a right implementation fails a check with probability about 2e-9:
- the sample std of n draws has standard error sigma / sqrt(2n) for a normal, 0.447 sigma / sqrt(n) for a
  uniform (its fourth moment is smaller);
- the sample mean has standard error sigma / sqrt(n);
- a normal's sample kurtosis is within sqrt(24 / n) of 3 (one standard error), which tells it from a uniform
  of the same std (kurtosis 1.8);
- n uniform draws on [-a, a] never exceed a, and all stay below (1 - t) a with probability about e^(-nt):
  the largest |w| is at least a (1 - 30 / n).
"""
import math

import numpy as np

SIGMAS = 6


def sample_verdict(w, std, bound=None, diagnose=None):
    """``(ok, message)`` for the float array ``w``: drawn from N(0, std^2), or from U(-bound, bound) when a
    ``bound`` is given (then std = bound / sqrt(3)). ``diagnose(got_std)`` may name a known slip."""
    w = np.asarray(w, dtype=np.float64)
    n = w.size
    if n == 0:
        return False, "it holds no values"
    mean, got = float(w.mean()), float(w.std())
    std_error = std * (math.sqrt(1 / 5) if bound is not None else math.sqrt(1 / 2)) / math.sqrt(n)
    if abs(got - std) > SIGMAS * std_error:
        message = f"the std is off by a factor {got / std:.4f} (allowed 1 +- {SIGMAS * std_error / std:.3f})"
        hint = diagnose(got) if diagnose and got > 0 else ""
        return False, message + (f": {hint}" if hint else "")
    if abs(mean) > SIGMAS * std / math.sqrt(n):
        return False, f"the mean is {mean / std:+.4f} std away from 0 (allowed +-{SIGMAS / math.sqrt(n):.3f})"
    if bound is None:
        centred = w - mean
        kurtosis = float(np.mean(centred ** 4) / np.mean(centred ** 2) ** 2)
        if abs(kurtosis - 3) > SIGMAS * math.sqrt(24 / n):
            return False, (f"the values do not look normally distributed (kurtosis {kurtosis:.3f}, a normal's is 3"
                           f"{', a uniform draw?' if kurtosis < 2.2 else ''})")
        return True, ""
    biggest = float(np.abs(w).max())
    if biggest > bound * (1 + 1e-12):
        return False, (f"values reach {biggest / bound:.4f} a; U(-a, a) stays within [-a, a] "
                       "(a normal draw where a uniform one belongs?)")
    if biggest < bound * (1 - 30 / n):
        return False, f"the values do not fill [-a, a]: the largest |w| is only {biggest / bound:.4f} a"
    return True, ""
