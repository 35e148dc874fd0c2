"""Text hygiene shared by the renderers.

Feedback and student output can carry anything a submission printed or raised. Control
characters other than tab, newline and carriage return (C0, DEL and C1) mean nothing in a page,
a CSV cell or a JSON "text" field, and some (NUL, ESC) break consumers or confuse readers, so
every renderer strips them the same way.
"""

from __future__ import annotations

import re

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    return _CONTROL_CHARS.sub("", text)
