"""What does the similarity pass leave out before fingerprinting, and what does it keep?

``torchgrade.similarity_prep.blank`` replaces docstrings, dead code and formatting-only tokens
with spaces, keeping every position, so the pair pages can highlight the original text.
"""

from __future__ import annotations

import textwrap

from torchgrade.similarity_prep import blank, contract_names


def _kept(source: str, keep: tuple[str, ...] = ("solve",)) -> str:
    """The code left after blanking, one space per run of whitespace."""
    out = blank(textwrap.dedent(source), keep)
    return " ".join(out.split())


def test_blanking_keeps_the_length_and_every_newline():
    source = 'def solve(x):\n    """Doc."""\n    unused = 3\n    return (x + 1)\n'
    out = blank(source, {"solve"})
    assert len(out) == len(source)
    assert [i for i, c in enumerate(out) if c == "\n"] == \
        [i for i, c in enumerate(source) if c == "\n"]


def test_docstrings_and_bare_constants_are_left_out():
    assert _kept('''
        """Module doc."""
        def solve(x):
            """Doc of solve."""
            "a string used as a comment"
            return x
        class Head:
            """Doc of the class."""
            def forward(self, h):
                """Doc of the method."""
                return h
        ''', ("solve", "Head")) == ("def solve(x): return x class Head: def forward(self, h): "
                                    "return h")


def test_unused_assignments_go_even_in_chains_and_used_ones_stay():
    assert _kept('''
        def solve(x):
            scratch = x * 2
            noise = scratch + 1
            y = x + 1
            total: int = 0
            total += 3
            return y
        ''') == "def solve(x): y = x + 1 return y"


def test_assignments_with_effects_beyond_a_name_stay():
    assert _kept('''
        def solve(x, out):
            out[0] = x
            self_like = out
            self_like.value = 3
            return None
        ''') == "def solve(x, out): out[0] = x self_like = out self_like.value = 3 return None"


def test_unused_helpers_go_but_the_contract_helpers_in_use_and_methods_stay():
    kept = _kept('''
        def _debug_dump(values, limit=3):
            return len(values)
        def _check(x):
            return x
        def solve(x):
            return _check(x)
        class Model:
            def forward(self, x):
                return x
            def extra_repr(self):
                return ""
        ''', ("solve", "Model"))
    assert "_debug_dump" not in kept
    assert kept == ("def _check(x): return x def solve(x): return _check(x) class Model: def "
                    "forward(self, x): return x def extra_repr(self): return \"\"")


def test_code_after_a_jump_and_false_blocks_go():
    assert _kept('''
        def solve(x):
            for i in range(3):
                if i:
                    continue
                    print(i)
            if False:
                print("debug")
            while 0:
                x += 1
            return x
            x = 4
        ''') == "def solve(x): for i in range(3): if i: continue return x"


def test_grouping_parentheses_and_trailing_commas_go_but_calls_keep_theirs():
    assert _kept('''
        def solve(x):
            y = (
                x
                - 1
            )
            return max(y, 0,)
        ''') == "def solve(x): y = x - 1 return max(y, 0 )"


def test_code_that_does_not_parse_is_left_as_it_is():
    source = "def solve(x):\n    %timeit x\n"
    assert blank(source, {"solve"}) == source


def test_contract_names_are_the_stubs_top_level_names():
    stub = "import torch\nEPS = 1e-6\ndef solve(x):\n    pass\nclass Head:\n    pass\n"
    assert contract_names(stub) == {"EPS", "solve", "Head"}
