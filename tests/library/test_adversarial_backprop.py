"""Adversarial inputs for `foundations.backprop` (issue 15): every public name, every argument.

Each call goes through `judge`: it must give the gradients torch.autograd gives (or finite
differences the
library did not compute), or raise a TypeError/ValueError from the library that names the argument.
Run: `pytest tests/library/test_adversarial_backprop.py`.
"""
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from helpers.adversarial import judge, record_correct, bad_inputs, NOT_NUMBERS, BAD_NUMBERS
import foundations.backprop as B
from foundations.init import lin, relu, mse, two_layer_net

FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(B.__all__) == {"mse_grad", "relu_grad", "lin_grad", "forward_and_backward",
                              "numerical_grad"}


def grads_close(tensors, expected, what, tol=1e-10):
    for t, e in zip(tensors, expected):
        ok = (t.g.shape == e.shape and t.g.dtype == e.dtype
              and torch.allclose(t.g, e, rtol=tol, atol=tol))
        record_correct(ok, f"{what}: gradient of shape {tuple(t.shape)}")


def autograd(fn, inputs, grad_out=None):
    "Autograd's gradients of fn(*inputs) with respect to every input, on fresh leaves."
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    return torch.autograd.grad(fn(*leaves), leaves, grad_outputs=grad_out)


# ---- mse_grad
# -------------------------------------------------------------------------------------------
@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["inp", "targ"]))
def test_mse_grad_one_bad_argument(bad, which):
    n = bad.shape[0] if isinstance(bad, torch.Tensor) and bad.ndim else 3
    args = {"inp": torch.randn(n, 1, dtype=torch.float64),
            "targ": torch.randn(n, dtype=torch.float64)}
    args[which] = bad.clone() if isinstance(bad,
                                            torch.Tensor) and bad.device.type != "meta" else bad
    outcome, value = judge(B.mse_grad, args["inp"], args["targ"], names=(which,))
    devices = (args["inp"].device.type, args["targ"].device.type) if outcome == "result" else ()
    if outcome == "result" and "meta" not in devices:
        inp, targ = args["inp"], args["targ"]
        expected = 2 * (inp.reshape(-1).double() - targ.reshape(-1).double()) / inp.shape[0]
        close = torch.allclose(inp.g.double().reshape(-1), expected, rtol=1e-2, atol=1e-2,
                               equal_nan=True)
        record_correct(inp.g.dtype == inp.dtype and close, f"mse_grad with {which} = {bad!r:.60}")


def test_mse_grad_integer_input_is_refused_not_truncated():
    "Issue 15, item 4: integer predictions used to get a gradient truncated to zeros."
    outcome, e = judge(B.mse_grad, torch.tensor([[1], [2]]), torch.tensor([0.5, 1.5]),
                       names=("inp",))
    assert outcome == "error" and "floating-point" in str(e)


# ---- relu_grad
# ------------------------------------------------------------------------------------------
@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["inp", "out"]))
def test_relu_grad_one_bad_argument(bad, which):
    if isinstance(bad, torch.Tensor) and bad.device.type != "meta":
        bad = bad.clone()   # no .g left from an earlier example
    shape = tuple(bad.shape) if isinstance(bad, torch.Tensor) else (3, 4)
    inp = torch.randn(shape) if which == "out" else bad
    floating = isinstance(bad, torch.Tensor) and bad.is_floating_point()
    out = bad if which == "out" else (relu(bad) if floating else torch.randn(shape))
    if isinstance(out, torch.Tensor):
        out.g = torch.ones(out.shape, dtype=out.dtype, device=out.device)
    outcome, value = judge(B.relu_grad, inp, out, names=(which, "out.g"))
    if outcome == "result" and inp.device.type != "meta":
        record_correct(torch.equal(inp.g, out.g * (inp > 0)),
                       f"relu_grad with {which} = {bad!r:.60}")


def test_relu_grad_in_place_relu_is_refused():
    "Issue 15, item 2: relu_grad(x, x) after an in-place ReLU used to double x.g silently."
    x = torch.tensor([-1.0, 2.0]); x.clamp_min_(0); x.g = torch.ones(2)
    outcome, e = judge(B.relu_grad, x, x, names=("out", "inp"))
    assert outcome == "error" and "same tensor" in str(e)
    assert torch.equal(x.g, torch.ones(2)), "the refusal must leave x.g as it was"
    y = torch.randn(4)
    outcome, e = judge(B.relu_grad, y, y.view(2, 2).view(4), names=("out",))
    assert outcome == "error" and "shares memory" in str(e)


def test_relu_grad_matches_autograd_off_the_kink():
    inp = torch.randn(5, 3, dtype=torch.float64); out = relu(inp); out.g = torch.randn_like(out)
    B.relu_grad(inp, out)
    grads_close([inp], autograd(torch.relu, [inp], out.g), "relu_grad")


# ---- lin_grad
# -------------------------------------------------------------------------------------------
def lin_args(n=4, n_in=3, n_out=2, dtype=torch.float64):
    inp, w = torch.randn(n, n_in, dtype=dtype), torch.randn(n_in, n_out, dtype=dtype)
    b = torch.randn(n_out, dtype=dtype)
    out = lin(inp, w, b); out.g = torch.randn_like(out)
    return {"inp": inp, "out": out, "w": w, "b": b}


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["inp", "out", "w", "b"]))
def test_lin_grad_one_bad_argument(bad, which):
    args = lin_args()
    if isinstance(bad, torch.Tensor) and which == "out":
        bad = bad.clone() if bad.device.type != "meta" else bad
        bad.g = torch.ones(bad.shape, dtype=bad.dtype, device=bad.device)
    args[which] = bad
    outcome, value = judge(B.lin_grad, *args.values(), names=(f"{which} ", which, "out.g"))
    if outcome == "result":
        inp, out, w, b = args.values()
        grads_close([inp, w, b], autograd(lambda *t: lin(*t), [inp, w, b], out.g),
                    f"lin_grad with {which} odd",
                    tol=1e-4)


@pytest.mark.parametrize("batch", [(1,), (5,), (2, 3), (0,)])
def test_lin_grad_batch_shapes(batch):
    inp = torch.randn(*batch, 3, dtype=torch.float64)
    w, b = torch.randn(3, 2, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    out = lin(inp, w, b); out.g = torch.randn_like(out)
    B.lin_grad(inp, out, w, b)
    grads_close([inp, w, b], autograd(lin, [inp, w, b], out.g), f"lin_grad on batch {batch}")


def test_lin_grad_aliasing():
    """Issue 15, item 10: a bias that is a view of the weights is refused; one tensor twice
    accumulates correctly."""
    w = torch.randn(3, 3, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    out = lin(x, w, w[0]); out.g = torch.randn_like(out)
    outcome, e = judge(B.lin_grad, x, out, w, w[0], names=("w and b",))
    assert outcome == "error"
    square = torch.randn(3, 3,
                         # the input is also the weight: its .g gets both uses
                         dtype=torch.float64)
    out = lin(square, square, torch.zeros(3, dtype=torch.float64)); out.g = torch.randn_like(out)
    B.zero_grads(square)
    B.lin_grad(square, out, square, torch.zeros(3, dtype=torch.float64))
    (expected,) = autograd(lambda s: lin(s, s, torch.zeros(3, dtype=torch.float64)), [square],
                           out.g)
    grads_close([square], [expected], "lin_grad with inp is w")


# ---- forward_and_backward
# -------------------------------------------------------------------------------
def net(n=6, n_in=4, n_hidden=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, dtype=torch.float64, generator=g)
    return [r(n, n_in), r(n), r(n_in, n_hidden), 0.1 * r(n_hidden), r(n_hidden, 1), 0.1 * r(1)]


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(range(6)))
def test_forward_and_backward_one_bad_argument(bad, which):
    args = net()
    args[which] = bad
    names = ("inp", "targ", "w1", "b1", "w2", "b2")
    outcome, value = judge(B.forward_and_backward, *args,
                           names=("x ", "w ", "b ", "output", "targ", names[which]))
    if outcome == "result" and all(t.device.type != "meta" for t in args):
        inp, targ, *params = args
        expected = autograd(lambda i, *p: mse(two_layer_net(i, *p), targ), [inp, *params])
        grads_close([inp, *params], expected, f"forward_and_backward with {names[which]} odd",
                    tol=1e-3)


def test_forward_and_backward_aliasing():
    """Issue 15, item 10: the input as the target and a bias that views the weights are refused;
    shared biases work."""
    inp, targ, w1, b1, w2, b2 = net(n_in=1, n_hidden=1)
    for args, name in (((inp, inp, w1, b1, w2, b2), "targ"),
                       ((inp, targ, w1, w1[0], w2, b2), "w1 and b1"),
                       ((inp, targ, w1, b1, w2, w2[0]), "w2 and b2"),
                       ((inp, targ, w1, b1, w2, targ[:1]), "targ")):
        outcome, e = judge(B.forward_and_backward, *args, names=(name,))
        assert outcome == "error", name
    B.forward_and_backward(inp, targ, w1, b1, w2,
                           b1)      # one tensor as both biases: .g adds both uses
    expected = autograd(lambda i, a, b, c: mse(two_layer_net(i, a, b, c, b), targ),
                        [inp, w1, b1, w2])
    grads_close([inp, w1, b1, w2], expected, "shared bias")


# ---- numerical_grad
# -------------------------------------------------------------------------------------
@FAST
@given(bad=bad_inputs("tensor"))
def test_numerical_grad_bad_x(bad):
    x = bad.clone() if isinstance(bad, torch.Tensor) and bad.device.type != "meta" else bad
    f = (lambda: (x ** 2).sum()) if isinstance(x, (torch.Tensor, np.ndarray)) else (lambda: 0.0)
    outcome, value = judge(B.numerical_grad, f, x, names=("x",))
    if outcome == "result":
        ok = type(value) is type(x) and np.allclose(np.asarray(value), np.asarray(2 * x),
                                                    rtol=1e-6, atol=1e-6)
        record_correct(ok, f"numerical_grad of {bad!r:.60}")


@FAST
@given(eps=st.sampled_from(NOT_NUMBERS + BAD_NUMBERS + [0.0, -1e-6, 0, np.float64(1e-5), 1e-3]))
def test_numerical_grad_bad_eps(eps):
    x = torch.randn(3, dtype=torch.float64)
    outcome, value = judge(B.numerical_grad, lambda: (x ** 2).sum(), x, eps, names=("eps",))
    if outcome == "result":
        record_correct(torch.allclose(value, 2 * x, rtol=1e-6, atol=1e-8), f"eps = {eps!r}")


@pytest.mark.parametrize("f", [None, 3, "f", lambda: "loss", lambda: torch.ones(2), lambda: 1j])
def test_numerical_grad_bad_f(f):
    outcome, e = judge(B.numerical_grad, f, torch.zeros(2, dtype=torch.float64), names=("f",))
    assert outcome == "error"


def test_numerical_grad_issue_cases(tmp_path):
    """Issue 15, items 1 and 3: read-only arrays, overlapping views, eps=inf, steps lost to
    rounding, version counters."""
    path = tmp_path / "x.bin"
    np.arange(4.0).tofile(path)
    read_only = np.asarray(np.memmap(path, dtype=np.float64, mode="r"))
    outcome, e = judge(B.numerical_grad, lambda: float(read_only.sum()), read_only, names=("x",))
    assert outcome == "error" and "read-only" in str(e)
    reversed_view = np.arange(4.0)[::-1]
    outcome, value = judge(B.numerical_grad, lambda: float((reversed_view ** 2).sum()),
                           reversed_view)
    record_correct(outcome == "result" and np.allclose(value, 2 * reversed_view, atol=1e-6),
                   "numerical_grad on a reversed NumPy view")
    windows = torch.arange(4.0, dtype=torch.float64).unfold(0, 2, 1)
    outcome, e = judge(B.numerical_grad, lambda: windows.sum(), windows, names=("x",))
    assert outcome == "error" and "overlap" in str(e)
    x = torch.randn(3, dtype=torch.float64)
    assert judge(B.numerical_grad, lambda: x.sum(), x, float("inf"), names=("eps",))[0] == "error"
    far = torch.full((2,), 1e11, dtype=torch.float64)
    outcome, e = judge(B.numerical_grad, lambda: far.sum(), far, names=("eps",))
    assert outcome == "error" and "step" in str(e)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    graph = (w ** 3).sum()
    B.numerical_grad(lambda: (w ** 2).sum(), w)
    # raised "modified by an inplace operation" before
    graph.backward()
    record_correct(torch.allclose(w.grad, 3 * w.detach() ** 2),
                   "a graph built on x before numerical_grad")
    nan = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    assert judge(B.numerical_grad, lambda: nan.sum(), nan, names=("x",))[0] == "error"


def test_numerical_grad_on_layouts():
    """Transposed, sliced, 0-d, empty and NumPy inputs give the right derivative and come back
    unchanged."""
    base = torch.randn(4, 5, dtype=torch.float64)
    for x in (base.T, base[:, ::2], torch.tensor(1.5, dtype=torch.float64),
              torch.empty(0, 3, dtype=torch.float64)):
        before = x.clone()
        value = B.numerical_grad(lambda: (x ** 3).sum(), x)
        record_correct(torch.allclose(value, 3 * x ** 2, rtol=1e-6,
                                      atol=1e-6) and torch.equal(x, before),
                       f"numerical_grad on {tuple(x.shape)}")
    a = np.linspace(-1, 1, 6).reshape(2, 3)
    record_correct(np.allclose(B.numerical_grad(lambda: float(np.sin(a).sum()), a), np.cos(a),
                               atol=1e-8), "NumPy")


# ---- issue 27: NumPy arrays of every valid layout
# -------------------------------------------------
def test_numerical_grad_on_big_endian_reversed_and_grad_arrays():
    "Big-endian float64, a negative-stride view and a GradArray are valid x: correct derivatives."
    from foundations.numpy_edition import GradArray
    base = np.linspace(-1, 1, 6)
    for x in (base.astype(">f8"), base[::-1], base.reshape(2, 3)[:, ::-2], GradArray(base.copy())):
        before = np.array(x, copy=True)
        outcome, value = judge(B.numerical_grad, lambda: float((np.asarray(x) ** 3).sum()), x)
        record_correct(outcome == "result" and isinstance(value, np.ndarray)
                       and np.allclose(value, 3 * before ** 2, atol=1e-6)
                       and np.array_equal(x, before), f"numerical_grad on {x.dtype} {x.strides}")
    overlapping = np.lib.stride_tricks.as_strided(np.zeros(3), (3, 2), (8, 8))
    outcome, e = judge(B.numerical_grad, lambda: 0.0, overlapping, names=("overlap",))
    assert outcome == "error"   # read-only or overlapping: either way refused by name
