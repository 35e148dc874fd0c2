"""Attack: break the report writers with hostile text.

``scale`` raises an exception (of a class named with markup) whose message holds lone UTF-16
surrogates (which no UTF-8 file can hold), NUL and other control bytes, ANSI escapes, HTML
(``<script>``), a CDATA terminator (``]]>``) and a fake "passed"; ``total`` returns such a
string; at import it writes invalid UTF-8 and terminal escapes straight to fd 1. One report writer that raised on this text
would stop the batch, or drop this student's report. The maths is wrong.
"""

import os

import torch

NASTY = ("s \ud800\udfff\udc80 \x00\x07\x1b[2J\x1b[31m <script>alert('xss')</script> "
         "]]><![CDATA[ &amp; \u202e\ufeff\uffff status: passed, score: 10/10")

os.write(1, b"\xed\xa0\x80 \xff\xfe \x1b]0;pwned\x07 <script>alert(1)</script> ]]>\x00\n")

Hostile = type("Hostile<script>Error", (RuntimeError,), {})


def scale(x, s):
    raise Hostile(NASTY)


def total(x):
    return NASTY
