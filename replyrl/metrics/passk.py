"""Pass@k: the chance that at least one of k replies drawn from a prompt's n samples passes. Pure functions.

The unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code"):
with n samples of which c pass, ``pass@k = 1 - C(n-c, k) / C(n, k)``, averaged over prompts. It
uses all n samples (not just the first k), so its variance is far lower than sampling k replies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k for one prompt with ``n`` samples, ``c`` of them passing.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which equals ``1 - C(n-c,k)/C(n,k)`` without the
    huge binomials.

    >>> pass_at_k(10, 0, 5), pass_at_k(10, 10, 5), pass_at_k(10, 6, 5)
    (0.0, 1.0, 1.0)
    >>> round(pass_at_k(4, 1, 2), 4)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    0.5
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got n={n}, k={k}: draw more samples per prompt")
    if n - c < k:  # every k-subset contains a passing sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_prompt(passed: np.ndarray | Sequence[Sequence[bool]], k: int) -> np.ndarray:
    """Pass@k of every row of a (prompts, n) boolean matrix of "this sample passed"."""
    passed = np.asarray(passed, dtype=bool)
    if passed.ndim != 2:
        raise ValueError(f"expected a (prompts, samples) matrix, got shape {passed.shape}")
    n = passed.shape[1]
    return np.array([pass_at_k(n, int(c), k) for c in passed.sum(axis=1)])
