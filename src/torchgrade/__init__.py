"""torchgrade: autograding for PyTorch coursework.

Student code runs only in a sandboxed worker process; graders talk to it through a proxy that
exchanges plain data. This package is imported by that worker too, so importing it must stay
cheap: no torch, no pytest at the top level.
"""

__version__ = "0.1.0"
