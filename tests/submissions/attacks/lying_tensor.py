"""Attack: return tensor subclasses that lie about equality.

``scale`` returns a subclass whose ``__torch_function__`` answers True to every comparison
(``allclose``, ``equal``, ``isclose``, ``eq``...) and whose ``__eq__``/``__bool__`` always say
"equal"; ``total`` returns one that also pretends to be ``torch.Tensor`` itself (its class claims
module ``torch`` and name ``Tensor``), in case the boundary only checks names. Either would pass
every comparison inside a grader that received the object itself. The values are zeros.
"""

import torch

LIES = {"allclose", "equal", "isclose", "eq", "__eq__", "all", "any", "is_nonzero"}


class AlwaysEqual(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in LIES:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __bool__(self):
        return True

    __hash__ = torch.Tensor.__hash__


class Tensor(AlwaysEqual):
    pass


Tensor.__module__ = "torch"
Tensor.__qualname__ = "Tensor"


def scale(x, s):
    return torch.zeros_like(x).as_subclass(AlwaysEqual)


def total(x):
    return torch.zeros((), requires_grad=True).as_subclass(Tensor)
