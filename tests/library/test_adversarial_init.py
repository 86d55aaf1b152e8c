"""Adversarial inputs for `foundations.init` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches an independent reference
(torch's own
functions), or raise a TypeError/ValueError from the library that names the argument.
Run: `pytest tests/library/test_adversarial_init.py`.
"""
import numpy as np, pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs, NOT_INTS, BAD_INTS,
                         NOT_NUMBERS, BAD_NUMBERS)
import foundations.init as I

FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(I.__all__) == {"lin", "activation_stds", "relu", "xavier_init", "kaiming_init",
                              "two_layer_net", "mse"}


def close(result, expected, what):
    """Same shape, dtype and device as torch's answer, equal values up to rounding (NaN where torch
    has NaN)."""
    if expected.device.type == "meta":
        record_correct(result.device.type == "meta" and result.shape == expected.shape, what)
        return
    ok = (result.shape == expected.shape and result.dtype == expected.dtype
          and result.device == expected.device)
    low = expected.dtype in (torch.float16, torch.bfloat16)
    record_correct(ok and torch.allclose(result, expected, rtol=1e-2 if low else 1e-5,
                                         atol=1e-2 if low else 1e-6,
                                         equal_nan=True), what)


def fitting_partners(bad, which):
    """A float32 (x, w, b) for lin where argument `which` is replaced by `bad` and the others fit
    its shape if they can."""
    n_in = bad.shape[-1] if which == "x" and getattr(bad, "ndim", 0) else 4
    if which == "w" and getattr(bad, "ndim", 0) == 2: n_in, n_out = bad.shape
    else: n_out = bad.shape[0] if which == "b" and getattr(bad, "ndim", 0) == 1 else 3
    args = {"x": torch.randn(2, n_in), "w": torch.randn(n_in, n_out), "b": torch.randn(n_out)}
    args[which] = bad
    return args


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["x", "w", "b"]))
def test_lin_one_bad_argument(bad, which):
    args = fitting_partners(bad, which)
    outcome, value = judge(I.lin, args["x"], args["w"], args["b"], names=(f"{which} ", "lin"))
    if outcome == "result":
        close(value, args["x"] @ args["w"] + args["b"], f"lin with {which} = {bad!r:.60}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                   torch.bool, torch.complex64])
def test_lin_all_of_one_dtype(dtype):
    """Floats of any width work (checked against F.linear); integers, bools and complex numbers are
    refused by name."""
    x, w, b = (t.to(dtype) for t in (torch.randn(3, 4), torch.randn(4, 2), torch.randn(2)))
    outcome, value = judge(I.lin, x, w, b, names=("x ",))
    if dtype.is_floating_point: close(value, F.linear(x, w.T, b), f"lin in {dtype}")
    else: assert outcome == "error" and "floating-point" in str(value)


def test_lin_layouts_and_aliasing():
    """Transposed, expanded, overlapping and empty inputs, and one tensor as both x and w, all give
    torch's answer."""
    a = torch.randn(4, 4)
    cases = [(a, a, a[0]), (a.T, a, a[:, 0]), (torch.arange(5.).unfold(0, 4, 1), a, torch.zeros(4)),
             (torch.randn(4).expand(3, 4), a, torch.randn(4)),
             (torch.empty(0, 4), a, torch.zeros(4)),
             (torch.randn(2, 3, 4), a, torch.randn(4)), (torch.randn(4), a, torch.randn(4)),
             (torch.randn(2, 4, device="meta"), torch.randn(4, 3, device="meta"),
              torch.randn(3, device="meta"))]
    for x, w, b in cases:
        outcome, value = judge(I.lin, x, w, b, names=("x ", "w ", "b "))
        assert outcome == "result"
        close(value, x @ w + b, f"lin on {tuple(x.shape)}")
    outcome, e = judge(I.lin, torch.randn(2, 4), torch.randn(4, 3), torch.randn(3, device="meta"),
                       names=("b ",))
    assert outcome == "error" and "one dtype and one device" in str(e)


@FAST
@given(bad=bad_inputs("tensor"))
def test_relu(bad):
    """Floating-point tensors give torch.relu's values in their own dtype; bools, integers and
    complex are refused."""
    outcome, value = judge(I.relu, bad, names=("x ",))
    if outcome == "result": close(value, torch.relu(bad), f"relu of {bad!r:.60}")
    elif isinstance(bad, torch.Tensor):
        assert not bad.is_floating_point() and "x must hold floating-point" in str(value)


def test_relu_keeps_special_values_exactly():
    x = torch.tensor([-float("inf"), -1.0, -0.0, 0.0, 2.5, float("inf"), float("nan")])
    assert torch.equal(I.relu(x).nan_to_num(7.0), torch.relu(x).nan_to_num(7.0))


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["output", "targ"]))
def test_mse_one_bad_argument(bad, which):
    n = bad.shape[0] if isinstance(bad, torch.Tensor) and bad.ndim else 3
    args = {"output": torch.randn(n, 1), "targ": torch.randn(n)}
    args[which] = bad
    outcome, value = judge(I.mse, args["output"], args["targ"], names=(which,))
    if outcome == "result":
        out, targ = args["output"], args["targ"]
        expected = F.mse_loss(out.reshape(-1).to(torch.promote_types(out.dtype, targ.dtype)),
                              targ.reshape(-1).to(
            torch.promote_types(out.dtype, targ.dtype)))
        close(value, expected, f"mse with {which} = {bad!r:.60}")


def test_mse_issue_cases():
    """Complex input (a negative 'mean squared error' before) and integer input are refused; so are
    empty batches."""
    for output, targ, name in ((torch.ones(3, dtype=torch.complex64), torch.ones(3), "output"),
                               (torch.ones(3), torch.arange(3), "targ"),
                               (torch.zeros(0), torch.zeros(0), "empty")):
        outcome, e = judge(I.mse, output, targ, names=(name,))
        assert outcome == "error"
    assert I.mse(torch.tensor([[3.0]]), torch.tensor([1.0])) == 4.0


@FAST
@given(which=st.sampled_from(["n_in", "n_out"]),
       bad=st.sampled_from(NOT_INTS + BAD_INTS + [10 ** 12]),
       init=st.sampled_from([I.xavier_init, I.kaiming_init]))
def test_initialisers_bad_sizes(which, bad, init):
    """Sizes that are not positive integers, or too large to allocate (10**12 by 3), are refused
    before allocating."""
    args = {"n_in": 3, "n_out": 2, which: bad}
    outcome, value = judge(init, args["n_in"], args["n_out"], names=(which,))
    if outcome == "result":   # only integer-valued sizes may pass: NumPy and 0-d tensor integers
        record_correct(value.shape == (args["n_in"], args["n_out"]),
                       f"{init.__name__} shape with {which} = {bad!r}")


@pytest.mark.parametrize("init", [I.xavier_init, I.kaiming_init])
def test_initialisers_other_arguments(init):
    ok = init(np.int64(3), np.int32(2), dtype=torch.float64)
    assert ok.shape == (3, 2) and ok.dtype == torch.float64
    for kwargs, name in (({"dtype": torch.int64}, "dtype"), ({"dtype": "float32"}, "dtype"),
                         ({"dtype": 3}, "dtype"),
                         ({"device": "nowhere"}, "device"), ({"device": 3.5}, "device"),
                         ({"generator": 0}, "generator"),
                         ({"generator": np.random.default_rng(0)}, "generator")):
        outcome, e = judge(init, 3, 2, names=(name,), **kwargs)
        assert outcome == "error", kwargs
    meta = init(10 ** 7, 10 ** 7,
                device="meta")   # no memory behind it: allowed, and nothing allocated
    assert meta.shape == (10 ** 7, 10 ** 7) and meta.device.type == "meta"
    g = torch.Generator().manual_seed(0)
    w = init(1000, 500, generator=g)
    expected = (2 if init is I.kaiming_init else 1) / 1000
    record_correct(abs(w.var().item() / expected - 1) < 0.02, f"{init.__name__} variance")


@FAST
@given(bad=bad_inputs("tensor"))
def test_activation_stds_bad_x(bad):
    outcome, value = judge(I.activation_stds, bad, 2, 0.5,
                           generator=torch.Generator().manual_seed(0), names=("x ",))
    if outcome == "result":
        record_correct(value.shape == (*bad.shape[:-2], 2) and value.dtype == bad.dtype,
                       f"stds of {bad!r:.60}")


@FAST
@given(which=st.sampled_from(["n_layers", "scale", "nonlinearity", "generator"]),
       bad=st.sampled_from(NOT_INTS + BAD_INTS + NOT_NUMBERS + BAD_NUMBERS + ["relu", 3]))
def test_activation_stds_bad_other_arguments(which, bad):
    args = {"n_layers": 2, "scale": 0.5, "nonlinearity": None, "generator": None, which: bad}
    outcome, value = judge(I.activation_stds, torch.randn(5, 4), args["n_layers"], args["scale"],
                           nonlinearity=args["nonlinearity"], generator=args["generator"],
                           names=(which,))
    if outcome == "result":
        record_correct(value.shape == (int(args["n_layers"]),), f"stds with {which} = {bad!r}")


def test_activation_stds_edges():
    "Zero rows, one activation, a width too large to allocate, and a stack: refused or right."
    for x in (torch.randn(0, 4), torch.randn(1, 1), torch.randn(3, 0, 4),
              torch.zeros(1).expand(2, 10 ** 6)):
        outcome, e = judge(I.activation_stds, x, 2, 0.5, names=("x", "activation_stds"))
        assert outcome == "error", tuple(x.shape)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.randn(6, 4, dtype=torch.float64)
    w = torch.randn(4, 4, dtype=torch.float64, generator=g2) * 0.5
    record_correct(torch.allclose(I.activation_stds(x, 1, 0.5, generator=g1), (x @ w).std()[None]),
                   "one layer by hand")


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["x", "w1", "b1", "w2", "b2"]))
def test_two_layer_net_one_bad_argument(bad, which):
    args = {"x": torch.randn(3, 4), "w1": torch.randn(4, 5), "b1": torch.randn(5),
            "w2": torch.randn(5, 1),
            "b2": torch.randn(1)}
    args[which] = bad
    outcome, value = judge(I.two_layer_net, *args.values(), names=("x ", "w ", "b ", "lin"))
    if outcome == "result":
        x, w1, b1, w2, b2 = args.values()
        close(value, torch.relu(x @ w1 + b1) @ w2 + b2, f"two_layer_net with {which} = {bad!r:.60}")


# ---- issue 27: float8, sparse and integer inputs; a nonlinearity that changes the width ---------
FLOAT8 = [getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)]


@pytest.mark.parametrize("dtype", FLOAT8)
def test_float8_is_refused_everywhere(dtype):
    "float8 weights cannot be drawn, and float8 inputs hardly computed with: refused by name."
    for init in (I.xavier_init, I.kaiming_init):
        outcome, e = judge(init, 3, 4, dtype=dtype, names=("dtype",))
        assert outcome == "error" and isinstance(e, TypeError)
    x = torch.randn(4, 3).to(dtype)
    for call in (lambda: I.lin(x, torch.randn(3, 2).to(dtype), torch.zeros(2).to(dtype)),
                 lambda: I.relu(x), lambda: I.activation_stds(x, 2, 1.0),
                 lambda: I.mse(x[:, 0], x[:, 1])):
        outcome, e = judge(call, names=("x", "output"))
        assert outcome == "error" and isinstance(e, TypeError) and ".float()" in str(e)


def test_sparse_inputs_are_refused():
    "lin, relu, mse and activation_stds refuse a sparse tensor by name, with .to_dense()."
    x = torch.randn(4, 3)
    for call, name in ((lambda: I.lin(x.to_sparse(), torch.randn(3, 2), torch.zeros(2)), "x"),
                       (lambda: I.lin(x, torch.randn(3, 2).to_sparse(), torch.zeros(2)), "w"),
                       (lambda: I.relu(x.to_sparse()), "x"),
                       (lambda: I.mse(x[:, 0].to_sparse(), x[:, 1]), "output"),
                       (lambda: I.activation_stds(x.to_sparse(), 2, 1.0), "x")):
        outcome, e = judge(call, names=(f"{name}.to_dense()",))
        assert outcome == "error" and isinstance(e, TypeError)


def test_int64_inputs_say_how_to_convert():
    "The book's policy: integer activations are refused, and the message gives the fix."
    ones = torch.ones(2, 3, dtype=torch.int64)
    for call, name in ((lambda: I.lin(ones, ones.T, ones[0, :2]), "x"), (lambda: I.relu(ones), "x"),
                       (lambda: I.mse(ones[0], ones[1]), "output")):
        outcome, e = judge(call, names=(f"{name}.float()",))
        assert outcome == "error" and isinstance(e, TypeError)


def test_activation_stds_with_a_nonlinearity_that_changes_the_width():
    "A nonlinearity must keep the shape (the next layer is square): a clear ValueError otherwise."
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    for bad in (lambda t: t[:, :2], lambda t: t.sum(), lambda t: t.tolist()):
        outcome, e = judge(I.activation_stds, x, 3, 1.0, nonlinearity=bad, names=("nonlinearity",))
        assert outcome == "error" and isinstance(e, ValueError)
