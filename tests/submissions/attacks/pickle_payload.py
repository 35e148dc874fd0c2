"""Attack: return objects whose unpickling runs code in the grader.

``scale`` returns an object whose ``__reduce__`` would run ``os.system`` to create
``/tmp/torchgrade-attack-pwned-<uid>-reduce`` (and a tensor subclass with the same trick in
``__reduce_ex__``); ``total`` returns a numpy object array holding one, plus the pickled bytes of
another. A grader that moved results with pickle (multiprocessing, torch.save/torch.load
without weights_only) would run the payload on load. The test asserts no such file exists on
the grading host. The maths is wrong.
"""

import os
import pickle

import numpy as np
import torch

PWNED = "/tmp/torchgrade-attack-pwned"


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}-reduce",))


class EvilTensor(torch.Tensor):
    def __reduce_ex__(self, protocol):
        return (os.system, (f"touch {PWNED}-reduce-ex",))


def scale(x, s):
    return [Payload(), torch.zeros_like(x).as_subclass(EvilTensor)]


def total(x):
    return {"value": np.array([Payload()], dtype=object),
            "pickled": pickle.dumps(Payload())}
