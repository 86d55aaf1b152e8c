"""Adversarial inputs for `foundations.timing` (issue 15): `median_time`, `speed_ladder`,
`ladder_table`.

Bad arguments must be refused before any timing starts, with a library TypeError/ValueError naming
the argument; sizes that would not fit in memory, rungs that would run for hours and low-precision
products whose check could not fail are refused or skipped. Run: `pytest
tests/test_adversarial_timing.py`.
"""
import numpy as np, pytest, torch
from unittest import mock
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs)
import foundations.timing as T

FAST = settings(max_examples=25, derandomize=True, deadline=None, database=None)
TINY = dict(n=2, k=3, m=2, budget=0.01, max_repeats=2, threads=1)


def test_every_public_name_is_covered():
    assert set(T.__all__) == {"median_time", "speed_ladder", "ladder_table", "environment_note"}


def test_environment_note_names_the_versions():
    "The line under each chapter: Python, PyTorch and NumPy versions, and the processor."
    import platform
    note = T.environment_note()
    for version in (platform.python_version(), torch.__version__, np.__version__):
        record_correct(version in note, f"{version} missing from {note!r}")
    with pytest.raises(TypeError): T.environment_note("cpu")


@FAST
@given(f=bad_inputs("callable"))
def test_median_time_bad_function(f):
    judge_error(T.median_time, f, names=("f ",))


@FAST
@given(value=bad_inputs("int"), which=st.sampled_from(["repeats", "warmup"]))
def test_median_time_bad_counts(value, which):
    if which == "warmup" and type(value) is int and value == 0: return   # no warm-up is allowed
    calls = []
    outcome, result = judge(T.median_time, lambda: calls.append(1), names=(which,),
                            **{which: value})
    if outcome == "result": record_correct(False, f"median_time accepted {which}={value!r}")
    assert calls == [], "nothing may run before the arguments are checked"


def test_median_time_numpy_counts_and_calls():
    calls = []
    seconds = T.median_time(lambda x: calls.append(x), 7, repeats=np.int64(3), warmup=np.int32(0))
    record_correct(isinstance(seconds, float) and seconds >= 0 and calls == [7] * 3,
                   "median_time with NumPy ints")


def judge_error(fn, *args, names, **kwargs):
    "The call must be refused (a result would mean a bad argument slipped through)."
    outcome, value = judge(fn, *args, names=names, **kwargs)
    if outcome == "result": record_correct(False, f"{fn.__name__} accepted {args} {kwargs}")


SIZE_ARGS = {"n": "int", "k": "int", "m": "int", "threads": "int", "max_repeats": "int",
             "budget": "number"}


@FAST
@given(data=st.data(), which=st.sampled_from(sorted(SIZE_ARGS)))
def test_speed_ladder_bad_numbers(data, which):
    """Every count and the budget: bad kinds and bad values are refused, naming the argument, before
    any timing."""
    value = data.draw(bad_inputs(SIZE_ARGS[which]))
    if which == "threads" and value is None:
        return   # None is threads' default: keep PyTorch's setting
    with mock.patch.object(T, "_time_way", side_effect=AssertionError("timing started")):
        judge_error(T.speed_ladder, names=(which,), **{**TINY, which: value})


@pytest.mark.parametrize("kwargs, name", [
    (dict(methods=None), "methods"), (dict(methods=("loops", 3)), "methods"),
    (dict(methods=["quick"]), "methods"),
    (dict(methods=[["loops"]]), "methods"), (dict(device=None), "device"),
    (dict(device="nowhere"), "device"),
    (dict(device="meta"), "device"), (dict(device=3), "device"), (dict(dtype=torch.int64), "dtype"),
    (dict(dtype=torch.complex64), "dtype"), (dict(dtype="float32"), "dtype"),
    (dict(dtype=None), "dtype"),
    (dict(seed=-1), "seed"), (dict(seed="0"), "seed"), (dict(seed=1.5), "seed"),
    (dict(n=10 ** 6, k=10 ** 6), "choose smaller n, k or m"),
    (dict(n=2 ** 40, m=2 ** 40), "choose smaller"),
    (dict(k=4096, dtype=torch.bfloat16), "k=4096"),
    (dict(k=10 ** 5, dtype=torch.float16), "k=100000")])
def test_speed_ladder_bad_arguments(kwargs, name):
    with mock.patch.object(T, "_time_way", side_effect=AssertionError("timing started")):
        judge_error(T.speed_ladder, names=(name,), **{**TINY, **kwargs})


def test_speed_ladder_numpy_sizes_and_low_precision():
    rows = T.speed_ladder(np.int64(2), np.int32(3), np.int64(2), methods="einsum", budget=0.01,
                          max_repeats=2)
    record_correct([row["method"] for row in rows] == ["einsum", "@"] and rows[0]["k"] == 3,
                   "NumPy sizes")
    for dtype in (torch.float16, torch.bfloat16):
        rows = T.speed_ladder(2, 64, 2, methods=("elementwise",), dtype=dtype, budget=0.01,
                              max_repeats=2)
        record_correct(all(row["seconds"] > 0 for row in rows), f"a {dtype} ladder")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("wrong", ["zeros", "one term dropped"])
def test_speed_ladder_catches_wrong_answers(dtype, wrong):
    """An all-zeros product never passes the answer check (issue 15, item 6), nor, in float32, a
    dropped term."""
    if wrong == "zeros": bad = lambda a, b: torch.zeros_like(a @ b)
    else: bad = lambda a, b: a[:, 1:] @ b[1:]
    if wrong == "one term dropped" and dtype != torch.float32:
        return   # too small for half precision to see
    with mock.patch.dict(T._LADDER, einsum=bad):
        outcome = None
        try: T.speed_ladder(4, 256, 4, methods="einsum", dtype=dtype, budget=0.01, max_repeats=2)
        except RuntimeError as e: outcome = str(e)
        record_correct(outcome is not None and "einsum disagrees" in outcome,
                       f"{wrong} in {dtype} passed the check")


def test_speed_ladder_budget_bounds_the_first_call():
    """`speed_ladder(1000, 1000, 1000, budget=0.01)` skips the triple loop after a slice, instead of
    running for hours."""
    rows = T.speed_ladder(1000, 1000, 1000, methods=("loops", "elementwise"), budget=0.01,
                          max_repeats=2, threads=1)
    loops, elementwise = rows[0], rows[1]
    record_correct(loops["seconds"] is None and loops["repeats"] == 0
                   and loops["predicted_seconds"] > 60, "loops")
    record_correct(elementwise["seconds"] is None, "elementwise skipped too")
    table = T.ladder_table(rows)
    record_correct("skipped" in table and "predicted" in table and "budget" in table,
                   "the table says so")


@pytest.mark.parametrize("rows, name",
                         [(None, "rows"), ("table", "rows"), ([1, 2], "rows"), ([], "rows"),
                                        ([{"method": "@"}], "rows"), ((), "rows")])
def test_ladder_table_bad_rows(rows, name):
    judge_error(T.ladder_table, rows, names=(name,))


# ---- issue 27: float8 is no dtype to time products in --------------------------------------------
def test_speed_ladder_refuses_float8():
    "PyTorch cannot draw or multiply float8 on the CPU: refused by name before any work."
    for name in ("float8_e4m3fn", "float8_e5m2"):
        if hasattr(torch, name):
            outcome, e = judge(T.speed_ladder, 2, 3, 2, dtype=getattr(torch, name),
                               names=("dtype",))
            assert outcome == "error" and isinstance(e, TypeError)
