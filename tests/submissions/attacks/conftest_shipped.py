"""Attack: ship a conftest.py (and pytest.ini, sitecustomize.py) in the submission folder.

The test that grades this submission copies ``conftest_shipped.files/*.txt`` next to it
(``submissions/conftest_shipped/conftest.py`` ...): a conftest whose hooks mark every check
passed, a pytest.ini pointing pytest at it, and a sitecustomize.py that would run in any Python
started with the folder on its path. The module itself is an honest-looking wrong answer.
"""

import torch


def scale(x, s):
    return torch.zeros_like(x)


def total(x):
    return torch.zeros((), requires_grad=True)
