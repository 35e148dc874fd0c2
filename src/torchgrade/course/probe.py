"""Linear-probe accuracy: how linearly separable a representation makes the labels.

Why it exists: self-supervised checks (SimCLR first) cannot compare a student's encoder with
the reference weight for weight, since training is stochastic and the views are only checked
by invariants. What they can compare is the standard evaluation of the field (Chen et al. 2020,
Sec. 4): freeze the features, fit a linear classifier on labelled training features and report
test accuracy. The probe is fully deterministic (lbfgs, fixed ``C`` and ``max_iter``, features
standardised on the training set), so that one set of features always gets the same score.

It runs only in the trusted grader process; scikit-learn is therefore imported inside the
function, so that importing :mod:`torchgrade.course` in the student worker needs torch alone.
The fit runs with BLAS/OpenMP limited to one thread: on a busy 2-core machine the threaded
OpenBLAS took 53 s for the raw-pixel probe (768 features) that one thread fits in 2 s, and one
thread also fixes the order of floating-point sums.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

PROBE_C = 1.0  # inverse L2 strength of the logistic regression (sklearn's default)
PROBE_MAX_ITER = 1000  # lbfgs iterations; enough to converge on a few thousand samples


def _as_numpy(a: torch.Tensor | np.ndarray, name: str, dims: int) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu")
        a = a.double().numpy() if dims == 2 else a.numpy()
    a = np.asarray(a)
    if a.ndim != dims:
        raise ValueError(f"{name} must be {dims}-D, got shape {a.shape}")
    return a


def linear_probe_accuracy(
    train_x: torch.Tensor | np.ndarray,
    train_y: torch.Tensor | np.ndarray,
    test_x: torch.Tensor | np.ndarray,
    test_y: torch.Tensor | np.ndarray,
) -> float:
    """Fit a multinomial logistic regression on ``train_x`` and return test accuracy in [0, 1].

    Features ``[N, F]`` are standardised with the training mean and standard deviation
    (constant features are left centred at 0); labels are integer class ids ``[N]``.
    Non-finite features (an encoder that diverged) score 0.0 instead of raising.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    xtr = _as_numpy(train_x, "train_x", 2).astype(np.float64)
    xte = _as_numpy(test_x, "test_x", 2).astype(np.float64)
    ytr = _as_numpy(train_y, "train_y", 1)
    yte = _as_numpy(test_y, "test_y", 1)
    if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
        raise ValueError("features and labels must have the same number of rows")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train_x has {xtr.shape[1]} features but test_x has {xte.shape[1]}")
    if xte.shape[0] == 0 or np.unique(ytr).size < 2:
        raise ValueError("need a non-empty test set and at least two classes in train_y")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        return 0.0

    with threadpool_limits(limits=1), warnings.catch_warnings():
        # Not converging within max_iter is part of the (deterministic) score, not an error.
        warnings.simplefilter("ignore")
        scaler = StandardScaler().fit(xtr)
        clf = LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)
        clf.fit(scaler.transform(xtr), ytr)
        predicted = clf.predict(scaler.transform(xte))
    return float((predicted == yte).mean())
