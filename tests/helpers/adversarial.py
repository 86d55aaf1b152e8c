"""The shared harness of the adversarial suites (`tests/library/test_adversarial_*.py`).

Each suite throws bad and edge input at every public function of one module and hands each call to
`judge`, which accepts exactly two outcomes: a result (that the suite then checks is correct), or a
`TypeError`/`ValueError` raised by the library's own code whose message names the argument. Anything
else (an error from deep inside torch, NumPy or Python, a crash, a message that names nothing) fails
the test. `OUTCOMES` counts the outcomes per class; the closing table of the run prints them.

`bad_inputs(kind)` is a Hypothesis strategy of bad values for one kind of argument.
"""
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

LIB = str(Path(__file__).resolve().parents[2] / "foundations")
OUTCOMES = Counter()   # outcome class -> count, over the whole run


def _raised_by_library(e):
    """Was `e` raised by a `raise` statement in the library's own code (its innermost frame is in
    foundations/)?"""
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(LIB)


def judge(fn, *args, names=(), **kwargs):
    """Call `fn(*args, **kwargs)`; return `("result", value)` or `("error", exception)`.

    An error passes only if it is a TypeError or ValueError raised by the library itself and, when
    `names` are given, its message contains at least one of them (the argument it is about)."""
    try:
        value = fn(*args, **kwargs)
    except (TypeError, ValueError) as e:
        if not _raised_by_library(e):
            OUTCOMES["obscure error"] += 1
            frame = traceback.extract_tb(e.__traceback__)[-1]
            raise AssertionError(f"{getattr(fn, '__name__', fn)} failed inside "
                                 f"{frame.filename}:{frame.lineno} "
                                 f"with {type(e).__name__}: {e}") from e
        if names and not any(n in str(e) for n in names):
            OUTCOMES["error naming nothing"] += 1
            raise AssertionError(f"{getattr(fn, '__name__', fn)} raised {type(e).__name__}({e}) "
                                 f"without naming any of {names}") from e
        OUTCOMES["clear library error"] += 1
        return "error", e
    except AssertionError: raise
    except Exception as e:
        OUTCOMES["obscure error"] += 1
        raise AssertionError(f"{getattr(fn, '__name__', fn)} raised {type(e).__name__}: {e}") from e
    OUTCOMES["result"] += 1
    return "result", value


def record_correct(ok:bool, what:str):
    "Count a result the suite checked, failing with `what` if it was wrong."
    if not ok:
        OUTCOMES["silently wrong"] += 1
        raise AssertionError(f"silently wrong: {what}")


NOT_TENSORS = [None, "x", 3, 2.5, [1.0, 2.0], [[1.0]], {"a": 1}, np.ones((2, 2)), object()]
NOT_INTS = [None, "3", 2.5, float("nan"), True, [3], torch.ones(2), np.float64(3.0)]
BAD_INTS = [0, -1, -(2 ** 40)]
NOT_NUMBERS = [None, "0.1", [0.1], torch.ones(2), complex(1, 1), True]
BAD_NUMBERS = [float("nan"), float("inf"), -float("inf")]


def odd_tensors(shape=(3, 4)):
    """Tensors of the right kind that are edge cases: empty, 0-d, odd dtypes, NaN/inf, a strided
    view, another device."""
    t = torch.randn(*shape)
    return [torch.tensor(1.5), torch.empty(0, *shape[1:]), t.to(torch.int64), t.to(torch.bool),
            t.to(torch.complex64),
            t.to(torch.float16), t.to(torch.float64), torch.full(shape, float("nan")),
            torch.full(shape, float("inf")),
            torch.randn(*shape, 2)[..., 0],  # a strided, non-contiguous view
            t.to("meta"), t.expand(2, *shape) if len(shape) < 4 else t]


def bad_inputs(kind:str):
    "A strategy of bad values for an argument of one kind: 'tensor', 'int', 'number' or 'callable'."
    if kind == "tensor": return st.sampled_from(NOT_TENSORS + odd_tensors())
    if kind == "int": return st.sampled_from(NOT_INTS + BAD_INTS)
    if kind == "number": return st.sampled_from(NOT_NUMBERS + BAD_NUMBERS)
    if kind == "callable": return st.sampled_from([None, 3, "f", torch.ones(2)])
    raise ValueError(f"unknown kind {kind!r}")
