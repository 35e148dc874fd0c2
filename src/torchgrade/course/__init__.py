"""Public course helpers shared by references, graders and student code.

Why it exists: the training checks need the same data, the same encoder and the same probe in
the trusted grader and in the sandboxed student worker. Everything here imports only torch,
numpy and the standard library at import time (the probe imports scikit-learn lazily; it runs
in the grader only), so the worker can import it without the grader's dependencies.
"""

from torchgrade.course.encoders import SmallConvEncoder
from torchgrade.course.probe import linear_probe_accuracy
from torchgrade.course.shapes import DEFAULT_CLASSES, SHAPES, make_shapes

__all__ = [
    "DEFAULT_CLASSES",
    "SHAPES",
    "SmallConvEncoder",
    "linear_probe_accuracy",
    "make_shapes",
]
