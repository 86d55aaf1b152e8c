"""Adversarial inputs for `foundations.broadcasting` (issue 15): every public name, every argument.

Each call goes through `judge`: a result must match torch (the reference), an error must be a
library TypeError/ValueError naming the argument.
Run: `pytest tests/library/test_adversarial_broadcasting.py`.
"""
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs, NOT_TENSORS, NOT_INTS,
                         BAD_INTS, NOT_NUMBERS, BAD_NUMBERS)
import foundations.broadcasting as B

FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None)
MATMULS = [B.matmul_broadcast, B.matmul_einsum]


def test_every_public_name_is_covered():
    assert set(B.__all__) == {"broadcast_shapes", "broadcast_to", "normalize", "matmul_broadcast",
                              "matmul_einsum"}


SIZES = NOT_INTS + BAD_INTS + [np.int64(3), np.int32(1), 0, 2 ** 62]
SHAPES = NOT_TENSORS[:3] + [np.ones(2), (3, None), [2, "3"], (2.0,), torch.Size([2, 1]),
                            np.int64(4), (np.int64(3), 1)]


@FAST
@given(size=st.sampled_from(SIZES), other=st.sampled_from([(3,), (1,), (), (2, 3)]))
def test_broadcast_shapes_bad_sizes(size, other):
    """A shape holding a bad size: refused naming `shapes[i][d]`, or (NumPy ints, 0, huge) the same
    answer as torch."""
    shape = (size, 3) if not isinstance(size, list) else size
    outcome, value = judge(B.broadcast_shapes, other, shape, names=("shapes[1]",))
    if outcome == "result":
        try: expected = tuple(torch.broadcast_shapes(other, tuple(int(s) for s in shape)))
        except RuntimeError: expected = None
        record_correct(value == expected, f"broadcast_shapes({other}, {shape!r})")


@FAST
@given(shape=st.sampled_from(SHAPES))
def test_broadcast_shapes_bad_shapes(shape):
    """Something that is not a shape: refused naming it, or (torch.Size, a bare NumPy int) read as
    one."""
    outcome, value = judge(B.broadcast_shapes, shape, (1,), names=("shapes[0]",))
    if outcome == "result":
        as_tuple = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
        record_correct(value == tuple(torch.broadcast_shapes(as_tuple, (1,))),
                       f"broadcast_shapes({shape!r})")


@FAST
@given(t=bad_inputs("tensor"),
       target=st.sampled_from([(2, 3, 4), (3, 4), (4,), (0, 3, 4), (2, 1, 4), ()]))
def test_broadcast_to_bad_or_odd_tensors(t, target):
    """Bad values for t, and odd tensors (empty, 0-d, any dtype, NaN, transposed, meta, expanded):
    torch's answer."""
    outcome, value = judge(B.broadcast_to, t, target, names=("t ", "t's", "shape"))
    if outcome == "result":
        expected = torch.broadcast_to(t, target)
        same = value.shape == expected.shape and value.dtype == t.dtype and value.device == t.device
        if t.device.type != "meta":
            same = same and torch.equal(value.isnan(),
                                        expected.isnan()) if value.is_floating_point() \
            else same and torch.equal(value, expected)
        if t.device.type != "meta" and value.is_floating_point():
            same = same and torch.equal(value.nan_to_num(), expected.nan_to_num())
        record_correct(same and (value.numel() == 0 or value.data_ptr() == t.data_ptr()),
                       f"broadcast_to({t!r:.50}, {target})")
    elif isinstance(t, torch.Tensor):   # refused only where torch refuses too
        with pytest.raises(RuntimeError): torch.broadcast_to(t, target)


@FAST
@given(shape=st.sampled_from(SHAPES + SIZES))
def test_broadcast_to_bad_shapes(shape):
    t = torch.randn(1, 1)
    outcome, value = judge(B.broadcast_to, t, shape, names=("shape",))
    if outcome == "result":
        record_correct(torch.equal(value, torch.broadcast_to(t, value.shape)),
                       f"broadcast_to(t, {shape!r})")


def test_broadcast_to_huge_target_allocates_nothing():
    "A view of 10**12 rows is a stride-0 view: nothing is allocated, as with torch."
    view = B.broadcast_to(torch.tensor([1.0, 2.0]), (10 ** 12, 2))
    assert view.shape == (10 ** 12,
                          2) and view.stride() == (0, 1) and view.untyped_storage().nbytes() == 8


@FAST
@given(x=bad_inputs("tensor"))
def test_normalize_bad_or_odd_images(x):
    """Anything but floating-point images of rank >= 3 is refused naming x; odd float images give
    the formula."""
    outcome, value = judge(B.normalize, x, 0.5, 2.0, names=("x ",))
    if outcome == "result": check_normalized(value, x, 0.5, 2.0)


def check_normalized(value, x, mean, std):
    if x.device.type == "meta":
        record_correct(value.shape == x.shape and value.device.type == "meta", "meta"); return
    m, s = (torch.as_tensor(v, dtype=torch.float64).reshape(-1, 1, 1) for v in (mean, std))
    expected = (x.double() - m) / s
    tol = 1e-2 if x.dtype in (torch.float16, torch.bfloat16) else 1e-5
    record_correct(value.shape == x.shape and value.dtype == x.dtype and
                   torch.allclose(value.double(), expected, rtol=tol, atol=tol, equal_nan=True),
                   f"normalize {x.dtype}")


@FAST
@given(value=st.sampled_from(NOT_NUMBERS + BAD_NUMBERS + [[0.1, 0.2], np.float32(0.5),
                                                          torch.ones(3, dtype=torch.float64),
                                                          torch.ones(3, device="meta"),
                                                          [[1.0, 2.0, 3.0]], 1e-50]),
       which=st.sampled_from(["mean", "std"]))
def test_normalize_bad_statistics(value, which):
    """A mean or std that is not one number or one per channel is refused naming it; NaN/inf means
    follow the formula."""
    x = torch.randn(2, 3, 4, 4)
    mean, std = (value, 1.0) if which == "mean" else (0.0, value)
    outcome, result = judge(B.normalize, x, mean, std, names=(which,))
    if outcome == "result": check_normalized(result, x, mean, std)
    if which == "std" and isinstance(value, float) and not value > 0: assert outcome == "error"
    if which == "std" and isinstance(value, float) and value == 1e-50:
        assert outcome == "error" and "float32" in str(result)   # underflows to 0


def test_normalize_where_std_rounds_to_zero_says_so():
    """A float16 std that underflows to 0 is reported in float16, not as the positive number the
    caller gave."""
    outcome, e = judge(B.normalize, torch.ones(1, 3, 2, 2, dtype=torch.float16), 0.0, 1e-10,
                       names=("std",))
    assert outcome == "error" and "float16" in str(e)


@FAST
@given(fn=st.sampled_from(MATMULS), bad=bad_inputs("tensor"), side=st.sampled_from("ab"))
def test_matmul_bad_or_odd(fn, bad, side):
    if side == "a":
        a, b = bad, torch.randn(bad.shape[-1] if isinstance(bad, torch.Tensor) and bad.ndim else 4,
                                2)
    else:
        a, b = torch.randn(2,
                           bad.shape[0] if isinstance(bad, torch.Tensor) and bad.ndim else 3), bad
    outcome, value = judge(fn, a, b, names=(f"{side} ", "matmul"))
    if outcome == "result":
        expected = a @ b
        record_correct(value.shape == expected.shape and value.dtype == expected.dtype and
                       torch.allclose(value, expected, rtol=1e-4, atol=1e-4, equal_nan=True),
                       f"{fn.__name__} {bad!r:.50}")


@pytest.mark.parametrize("fn", MATMULS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bfloat16, torch.float64,
                                   torch.complex64, torch.bool])
def test_matmul_odd_dtypes_and_layouts(fn, dtype):
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(3, 4, generator=g) * 3).to(dtype)
    b = (torch.randn(2, 4, generator=g) * 3).to(dtype).T
    outcome, value = judge(fn, a, b, names=("a ", "b "))
    if dtype == torch.bool: assert outcome == "error"; return
    wide = torch.complex128 if dtype.is_complex else torch.float64
    reference = a.to(wide) @ b.to(wide)
    u = torch.finfo(dtype).eps / 2 if dtype.is_floating_point or dtype.is_complex else 0
    error = (value.to(wide) - reference).norm().item()
    record_correct(value.dtype == dtype and error <= 4 * u * 2 * reference.norm().item(),
                   f"{fn.__name__} {dtype}")
    for a_, b_ in ((torch.empty(0, 3), torch.randn(3, 2)), (torch.randn(2, 0), torch.randn(0, 3)),
                   (a, a.T)):
        if a_.dtype == a.dtype or dtype == torch.float32:
            low = dict(rtol=2e-2, atol=2e-2) if dtype in (torch.float16, torch.bfloat16) else {}
            record_correct(torch.allclose(fn(a_, b_), a_ @ b_, **low),
                           f"{fn.__name__} on {tuple(a_.shape)}")


# ---- issue 27: dtypes PyTorch can store but not compute with -------------------------------------
@pytest.mark.parametrize("name", ["float8_e4m3fn", "uint16", "uint64"])
def test_stored_only_dtypes_are_refused_by_the_products(name):
    "matmul_broadcast and matmul_einsum refuse float8 and wide unsigned integers by name."
    if not hasattr(torch, name): pytest.skip(f"this PyTorch has no {name}")
    a, b = torch.ones(2, 3).to(getattr(torch, name)), torch.ones(3, 2).to(getattr(torch, name))
    for fn in (B.matmul_broadcast, B.matmul_einsum):
        outcome, e = judge(fn, a, b, names=("a is torch.",))
        assert outcome == "error" and isinstance(e, TypeError)
