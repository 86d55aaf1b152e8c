"""Adversarial inputs for `foundations.matmul` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches an independent reference, or
raise a TypeError/ValueError from the library that names the argument. Run: `pytest
tests/test_adversarial_matmul.py`.
"""
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs, NOT_NUMBERS,
                         BAD_NUMBERS)
import foundations.matmul as M

FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None)
MATMULS = [M.matmul_loops, M.matmul_elementwise]


def test_every_public_name_is_covered():
    assert set(M.__all__) == {"neuron", "check_matmul_args", "matmul_loops", "matmul_elementwise"}


def check_product(result, a, b, what):
    """A result must be `a @ b`: its shape, dtype and device, and its values up to rounding (NaN
    where torch has NaN)."""
    if a.device.type == "meta":
        record_correct(result.device.type == "meta" and result.shape == (a.shape[0], b.shape[1]),
                       what); return
    expected = a @ b
    record_correct(result.shape == expected.shape and result.dtype == expected.dtype
                   and result.device == expected.device, f"{what}: shape, dtype, device")
    if not (a.is_floating_point() or a.is_complex()):
        record_correct(torch.equal(result, expected), what); return
    if not (a.isfinite().all() and b.isfinite().all()):
        record_correct(torch.allclose(result, expected, equal_nan=True), what); return
    # an independent reference, rounded once
    wide = torch.complex128 if a.is_complex() else torch.float64
    reference = a.to(wide) @ b.to(wide)
    error = (result.to(wide) - reference).norm().item()
    u = torch.finfo(a.dtype).eps / 2
    record_correct(error <= 4 * u * a.shape[1] ** 0.5 * reference.norm().item() + 1e-30,
                   f"{what}: error {error:.2g}")


@FAST
@given(fn=st.sampled_from(MATMULS + [M.check_matmul_args]), bad=bad_inputs("tensor"),
       side=st.sampled_from("ab"))
def test_one_bad_or_odd_matrix(fn, bad, side):
    "One argument is a bad value or an odd tensor, the other a plain float32 matrix that fits it."
    if side == "a":
        k = getattr(bad, "shape", (3, 4))[-1] if getattr(bad, "ndim", 0) else 4
        a, b = bad, torch.randn(k, 2)
    else:
        a, b = torch.randn(2, getattr(bad, "shape", (3,))[0] if getattr(bad, "ndim", 0) else 3), bad
    outcome, value = judge(fn, a, b, names=(f"{side} ", "matmul"))
    if outcome == "result":
        if fn is M.check_matmul_args:
            record_correct(value == (a.shape[0], a.shape[1], b.shape[1]), "sizes")
        else: check_product(value, a, b, f"{fn.__name__} with {side} = {bad!r:.60}")


@pytest.mark.parametrize("fn", MATMULS)
@pytest.mark.parametrize("dtype",
                         [torch.int64, torch.int8, torch.float16, torch.bfloat16, torch.float64,
                                   torch.complex64, torch.bool])
def test_both_of_one_odd_dtype(fn, dtype):
    """Both matrices of one dtype: integers exactly, low precision and complex up to rounding, bool
    refused."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, generator=g) * 3, torch.randn(4, 2, generator=g) * 3
    a, b = a.to(dtype), b.to(dtype)
    outcome, value = judge(fn, a, b, names=("a ", "b "))
    if dtype == torch.bool: assert outcome == "error" and "torch.bool" in str(value)
    else: check_product(value, a, b, f"{fn.__name__} in {dtype}")


@pytest.mark.parametrize("fn", MATMULS)
def test_shapes_layouts_and_aliasing(fn):
    "Empty, 1x1, transposed, overlapping and stride-0 inputs, and a matrix times itself."
    a = torch.randn(4, 4)
    cases = [(torch.empty(0, 3), torch.randn(3, 2)), (torch.randn(2, 0), torch.randn(0, 3)),
             (torch.randn(1, 1), torch.randn(1, 1)), (a, a), (a, a.T), (a[:, :2].T, a[:, 1:3]),
             (torch.arange(6.).unfold(0, 3, 1), torch.randn(3, 2)),          # overlapping rows
             (torch.randn(3).expand(2, 3), torch.randn(3, 1).expand(3, 4))]  # stride-0 views
    # (both on "meta" works too, but the first arithmetic on meta tensors costs seconds of set-up)
    for a_, b_ in cases:
        outcome, value = judge(fn, a_, b_, names=("a ", "b "))
        assert outcome == "result"
        check_product(value, a_, b_, f"{fn.__name__} on {tuple(a_.shape)} @ {tuple(b_.shape)}")


def neuron_reference(inputs, weights, bias):
    "The neuron in NumPy complex128: an independent reference for any real or complex input."
    x, w = (np.asarray(torch.as_tensor(v).double() if isinstance(v, torch.Tensor) else v,
                       dtype=complex)
            for v in (inputs, weights))
    return complex(np.sum(x * w) + complex(bias.item() if isinstance(bias, torch.Tensor) else bias))


def check_neuron(value, inputs, weights, bias, what):
    if any(isinstance(v, torch.Tensor) and v.device.type == "meta"
           for v in (inputs, weights, bias)):
        record_correct(value.device.type == "meta" and value.shape == (), what); return
    if isinstance(value, torch.Tensor): record_correct(value.ndim == 0, f"{what}: one number out")
    expected = neuron_reference(inputs, weights, bias)
    got = complex(value.item() if isinstance(value, torch.Tensor) else value)
    low = any(isinstance(v, torch.Tensor) and v.dtype in (torch.float16, torch.bfloat16)
              for v in (inputs, weights))
    record_correct(np.isclose(got, expected, rtol=1e-2 if low else 1e-5,
                              atol=1e-2 if low else 1e-6, equal_nan=True)
                   or (np.isinf(got) and np.isinf(expected)), what)


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["inputs", "weights"]))
def test_neuron_bad_vectors(bad, which):
    "A bad or odd value for inputs or weights, with a partner list of the right length."
    n = bad.shape[-1] if isinstance(bad, torch.Tensor) and bad.ndim else 2
    partner = [0.5 * (i + 1) for i in range(n)]
    inputs, weights = (bad, partner) if which == "inputs" else (partner, bad)
    outcome, value = judge(M.neuron, inputs, weights, 0.25, names=(which,))
    if outcome == "result":
        check_neuron(value, inputs, weights, 0.25, f"neuron with {which} = {bad!r:.60}")


@FAST
@given(bias=st.sampled_from(NOT_NUMBERS + BAD_NUMBERS
                            + [np.float64(0.5), np.int64(2), torch.tensor(0.5)]))
def test_neuron_bad_bias(bias):
    """A bias that is not one real number is refused, or (NaN, inf, complex, NumPy scalars) gives
    the right number."""
    outcome, value = judge(M.neuron, [1.0, 2.0], [0.5, -1.0], bias, names=("bias",))
    if outcome == "result":
        check_neuron(value, [1.0, 2.0], [0.5, -1.0], bias, f"neuron with bias = {bias!r}")
    if isinstance(bias, (list, torch.Tensor)) and torch.as_tensor(bias).ndim != 0:
        assert outcome == "error", "a vector bias must be refused (issue 15, item 8)"


def test_neuron_on_plain_lists_stays_plain_python():
    "Plain lists in, a plain Python float out (the chapter's point), also with no inputs at all."
    assert M.neuron([1.0, 2.0, 3.0], [0.5, -1.0, 2.0], 0.25) == 4.75
    assert type(M.neuron([1.0, 2.0], [3.0, 4.0], 0.0)) is float
    assert M.neuron([], [], 1.5) == 1.5


# ---- issue 27: dtypes PyTorch can store but not compute with -------------------------------------
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64"])
def test_stored_only_dtypes_are_refused_with_the_fix(name):
    "float8 and uint16 to uint64 have almost no arithmetic: refused by name, with the conversion."
    if not hasattr(torch, name): pytest.skip(f"this PyTorch has no {name}")
    a, b = torch.ones(2, 3).to(getattr(torch, name)), torch.ones(3, 2).to(getattr(torch, name))
    fix = "a.float()" if name.startswith("float") else "a.long()"
    for fn in (M.matmul_loops, M.matmul_elementwise):
        outcome, e = judge(fn, a, b, names=(fix,))
        assert outcome == "error" and isinstance(e, TypeError)
    outcome, e = judge(M.neuron, a[0], a[0], 1.0, names=("inputs",))
    assert outcome == "error" and isinstance(e, TypeError)
