"""Adversarial inputs for `foundations.autograd` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches PyTorch's own autograd (the
independent reference: the same expression on torch leaves, values and gradients), or raise a
TypeError/ValueError from the library that names the argument. Errors about the state of a graph
(backward twice, backward of a tensor that requires no grad) are RuntimeErrors, as in PyTorch, and
are checked by their message. Run: `pytest tests/library/test_adversarial_autograd.py`.
"""
import numpy as np
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs, odd_tensors, NOT_INTS, BAD_INTS,
                         NOT_TENSORS)
import foundations.autograd as A
from foundations.autograd import Tensor

FAST = settings(max_examples=20, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(A.__all__) == {"Tensor", "unbroadcast", "no_grad", "draw_graph", "cross_entropy",
                              "conv2d", "make_node", "topological_order", "graph_layout",
                              "backward_steps"}


def randn(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


TOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5}


def same(result, expected, what):
    """Same shape, dtype and device as the reference, and the same values up to rounding
    (NaN where it has NaN)."""
    tol = TOL.get(expected.dtype, 1e-9)
    record_correct(isinstance(result, torch.Tensor),
                   f"{what}: not a torch tensor ({type(result).__name__})")
    record_correct(result.shape == expected.shape and result.dtype == expected.dtype
                   and result.device == expected.device,
                   f"{what}: {tuple(result.shape)} {result.dtype} {result.device} where PyTorch "
                   f"gives {tuple(expected.shape)} {expected.dtype} {expected.device}")
    if expected.device.type != "meta" and expected.numel():
        record_correct(torch.allclose(result, expected, rtol=tol, atol=tol, equal_nan=True),
                       f"{what}: values")


def leaf(t):
    "Our leaf on `t`, requiring grad when it can, and PyTorch's leaf on a copy."
    grad = t.is_floating_point()
    return Tensor(t, requires_grad=grad), t.detach().clone().requires_grad_(grad)


def compare(ours, theirs, leaves, what):
    """Value of our result against PyTorch's, then both backward from the same upstream gradient,
    leaf by leaf."""
    same(ours.data, theirs.detach(), f"{what}: value")
    if not theirs.requires_grad: return
    upstream = (torch.ones_like(theirs) if theirs.device.type == "meta"
                else torch.rand_like(theirs) + 0.5)
    ours.backward(upstream); theirs.backward(upstream)
    for our_leaf, their_leaf in leaves:
        if their_leaf.grad is None:
            record_correct(our_leaf.grad is None, f"{what}: a gradient PyTorch does not give")
        else: same(our_leaf.grad, their_leaf.grad, f"{what}: gradient")


# ---------------------------------------------------------------- construction

BAD_DATA = [None, "x", {"a": 1}, object(), [[1.0], [1.0, 2.0]], 1 + 2j, [1.0, "a"],
            torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.complex64), np.array(["a"]),
            Tensor(1.0)]


@FAST
@given(data=st.sampled_from(BAD_DATA) | bad_inputs("tensor"), requires_grad=st.booleans())
def test_construction(data, requires_grad):
    """Tensor(data): a torch tensor is kept as it is (detached); numbers and lists become the
    default dtype; the rest refused."""
    outcome, t = judge(Tensor, data, requires_grad=requires_grad, names=("data",))
    if outcome == "error": return
    expected = (data if isinstance(data, torch.Tensor)
                else torch.tensor(data, dtype=torch.get_default_dtype()))
    record_correct(t.requires_grad == requires_grad and t.grad is None, "requires_grad and grad")
    same(t.data, expected, f"Tensor({data!r:.40})")
    if isinstance(data, torch.Tensor):
        record_correct(t.data.data_ptr() == data.data_ptr(), "kept, not copied")
    record_correct(not requires_grad or t.data.is_floating_point(),
                   "only floating point requires grad")


@FAST
@given(flag=st.sampled_from([None, 1, 0, "yes", np.bool_(True), torch.tensor(True), 1.0]))
def test_requires_grad_must_be_a_bool(flag):
    assert judge(Tensor, [1.0], requires_grad=flag, names=("requires_grad",))[0] == "error"


# ---------------------------------------------------------------- binary operations

BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "@": lambda a, b: a @ b, "r+": lambda a, b: b + a,
          "r-": lambda a, b: b - a, "r*": lambda a, b: b * a, "r/": lambda a, b: b / a,
          "r@": lambda a, b: b @ a}
OPERANDS = NOT_TENSORS + [np.float64(2.0), np.int64(3), True, 1 + 1j,
                          torch.ones(4, dtype=torch.bool), torch.ones(4, dtype=torch.complex64),
                          torch.ones(5), torch.ones(3, 5), float("nan"), float("inf"), 0, 0.0,
                          torch.zeros(4)] + odd_tensors((3, 4)) + odd_tensors((4, 2))


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(other=st.sampled_from(OPERANDS), op=st.sampled_from(sorted(BINARY)), wrap=st.booleans())
def test_binary_operations(other, op, wrap):
    """A (3, 4) float64 leaf with every kind of other operand, on either side: PyTorch's value and
    gradients, or a clear error."""
    a, ta = leaf(randn(3, 4))
    leaves = [(a, ta)]
    if (wrap and isinstance(other, torch.Tensor) and not other.is_complex()
            and other.dtype != torch.bool):
        other, t_other = leaf(other)   # our Tensor on the odd data, requiring grad if it can
        leaves.append((other, t_other))
    else: t_other = other
    outcome, out = judge(BINARY[op], a, other, names=("operand", "shape", "@ takes"))
    if outcome == "error":
        if (isinstance(t_other, (int, float, torch.Tensor)) and not isinstance(t_other, bool)
                and not (isinstance(t_other, torch.Tensor) and t_other.is_complex())):
            # PyTorch refuses too
            with pytest.raises((RuntimeError, ValueError, TypeError)): BINARY[op](ta, t_other).sum()
        return
    expected = BINARY[op](ta, t_other)
    compare(out, expected, leaves, f"{op} with {other!r:.40}")


def test_numpy_on_the_left_defers_to_tensor():
    """NumPy arrays and scalars on the left leave the operation to Tensor: an array is refused,
    a scalar works."""
    a, ta = leaf(randn(2))
    assert judge(lambda: np.ones(2) * a, names=("operand",))[0] == "error"
    compare(np.float64(3.0) * a, 3.0 * ta, [(a, ta)], "np.float64 * Tensor")


def test_power():
    """t ** p for a real p (gradient 0 for p = 0, even at 0); a Tensor as exponent, or as base of a
    number, is refused."""
    for p in (2, 3, 0.5, -1, 0, np.float64(2.0), float("nan"), float("inf")):
        a, ta = leaf(torch.tensor([0.0, 1.5, -2.0, float("nan")], dtype=torch.float64))
        outcome, out = judge(lambda: a ** p, names=("exponent",))
        assert outcome == "result"
        compare(out, ta ** float(p), [(a, ta)], f"** {p}")
    a = Tensor(randn(3), requires_grad=True)
    for bad in (Tensor(2.0), torch.tensor(2.0), None, "2", True, 1 + 1j):
        assert judge(lambda: a ** bad, names=("exponent",))[0] == "error"
    assert judge(lambda: 2 ** a, names=("exponent",))[0] == "error"
    # integers to a negative power
    assert judge(lambda: Tensor(torch.arange(3)) ** -1, names=("**",))[0] == "error"


# ---------------------------------------------------------------- unary operations and reductions

UNARY = {"neg": lambda t: -t, "relu": lambda t: t.relu(), "exp": lambda t: t.exp(),
         "log": lambda t: t.log(), "sum": lambda t: t.sum(), "sum0": lambda t: t.sum(0),
         "sum-1k": lambda t: t.sum(-1, keepdim=True),
         "mean": lambda t: t.mean(), "mean0": lambda t: t.mean(0), "mean()": lambda t: t.mean(()),
         "reshape": lambda t: t.reshape(-1), "T": lambda t: t.T,
         "log_softmax": lambda t: t.log_softmax(-1), "square": lambda t: t ** 2}


@settings(max_examples=30, derandomize=True, deadline=None, database=None)
@given(data=st.sampled_from([t for t in odd_tensors((3, 4)) + odd_tensors((2, 3, 2))
                              + [torch.tensor(-0.0)]
                             if t.dtype not in (torch.bool, torch.complex64)]
                            + [torch.tensor([[0.0, -1.0, float("nan"), float("inf"),
                                              -float("inf")]], dtype=torch.float64),
                               torch.empty(3, 0), torch.tensor(2).expand(3, 2)]),
       op=st.sampled_from(sorted(UNARY)))
def test_unary_operations(data, op):
    """Every method on 0-d, empty, integer, half, NaN/inf, transposed, expanded and meta data:
    PyTorch's values and gradients."""
    t, tt = leaf(data)
    outcome, out = judge(UNARY[op], t, names=("dim", "dtype", "shape"))
    if outcome == "error":
        # PyTorch refuses too
        with pytest.raises((RuntimeError, IndexError, NotImplementedError)): UNARY[op](tt)
        return
    compare(out, UNARY[op](tt), [(t, tt)],
            f"{op} of {tuple(data.shape)} {data.dtype} {data.device}")


@FAST
@given(dim=st.sampled_from([2, -3, 5, (0, 0), (0, -2), (0, 2), "0", 1.0, None, [0, 1], (),
                            np.int64(1), True, torch.tensor(1), (1, "a")]),
       op=st.sampled_from(["sum", "mean", "log_softmax"]), keepdim=st.booleans())
def test_bad_dims(dim, op, keepdim):
    """sum/mean/log_softmax over dims out of range, repeated, of the wrong kind: PyTorch's answer,
    or an error naming dim."""
    t, tt = leaf(randn(3, 4))
    kw = {} if op == "log_softmax" else dict(keepdim=keepdim)
    outcome, out = judge(lambda: getattr(t, op)(dim, **kw), names=("dim",))
    if outcome == "error": return
    torch_dim = int(dim) if isinstance(dim, (np.integer, torch.Tensor)) else dim
    expected = (getattr(tt, op)(torch_dim, **kw) if torch_dim is not None or op != "log_softmax"
                else None)
    compare(out, expected, [(t, tt)], f"{op}(dim={dim!r})")


@FAST
@given(shape=st.sampled_from([(5,), (-1, -1), (-2, 6), (0, -1), (2.0, 6), ("a",), (None,),
                              ((2, 6),), ([3, 4],), (torch.Size([12]),), (np.int64(12),), (2, 6),
                              (12, 1), (2 ** 62, 2 ** 62), (13,), (), ((),), ((2, 6), 1), (-1,),
                              (True, 12)]))
def test_reshape(shape):
    """reshape to impossible or odd shapes: the same entries in PyTorch's shape, or an error naming
    the shape."""
    t, tt = leaf(randn(3, 4))
    outcome, out = judge(lambda: t.reshape(*shape), names=("shape",))
    if outcome == "result": compare(out, tt.reshape(*shape), [(t, tt)], f"reshape{shape!r}")
    elif shape and all(type(s) is int for s in shape):
        with pytest.raises(RuntimeError): tt.reshape(*shape)     # PyTorch refuses the same shapes


def test_empty_reshape_is_ambiguous():
    "An empty tensor cannot infer -1 next to a 0: refused by name, as PyTorch refuses it."
    t = Tensor(torch.empty(0, 4), requires_grad=True)
    assert judge(lambda: t.reshape(0, -1), names=("shape",))[0] == "error"


# ---------------------------------------------------------------- backward

def test_backward_seeds_and_state():
    """backward: grad of the wrong kind, shape, dtype or device is refused by name; state errors
    are RuntimeErrors."""
    a, ta = leaf(randn(2, 3))
    for bad in (torch.ones(3, 2, dtype=torch.float64), torch.ones(2, 3),
                torch.ones(2, 3, dtype=torch.float64).to("meta"), [[1.0] * 3] * 2,
                Tensor(torch.ones(2, 3, dtype=torch.float64)), torch.ones(6, dtype=torch.float64),
                torch.ones(2, 3, dtype=torch.int64), "ones"):
        assert judge(lambda: (a * 2).backward(bad), names=("grad",))[0] == "error"
    assert judge(lambda: (a * 2).backward(), names=("grad",))[0] == "error"  # not a scalar, no grad
    assert judge(lambda: (a * 2).sum().backward(retain_graph="yes"),
                 names=("retain_graph",))[0] == "error"
    record_correct(a.grad is None, "a refused backward leaves no gradient")
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).sum().backward()
    loss = (a * a).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"): loss.backward()
    a.grad = None
    loss = (a * a).sum()
    loss.backward(retain_graph=True); loss.backward()
    (ta * ta).sum().backward(retain_graph=True); (ta * ta).sum().backward()
    same(a.grad, ta.grad, "two passes add up")
    one = Tensor(torch.ones(1, 1), requires_grad=True)
    (one * 3).backward()                      # one entry, not 0-d: a scalar for backward
    same(one.grad, torch.full((1, 1), 3.0), "a (1, 1) root")


def test_backward_gradient_with_nan_and_non_contiguous_seed():
    "A transposed upstream gradient, and NaN in it, flow as in PyTorch."
    a, ta = leaf(randn(3, 2))
    seed = randn(2, 3, seed=1).T
    seed[0, 0] = float("nan")
    (a * 2).backward(seed); (ta * 2).backward(seed)
    same(a.grad, ta.grad, "non-contiguous seed with NaN")


def test_a_tensor_used_many_times():
    """A leaf used many times, by every operation, and a deep chain: the gradients add up as
    PyTorch's do."""
    a, ta = leaf(randn(3, 3) * 0.5)
    def f(x):
        return (((x * x + x / (x * x + 1) - x) @ x.T + x.relu() * x.exp() - x.log_softmax(-1))
                .mean(0).sum() + (x ** 3).sum())
    compare(f(a), f(ta), [(a, ta)], "a used many times")
    b, tb = leaf(torch.tensor(1.0, dtype=torch.float64))
    ours, theirs = b, tb
    for _ in range(300): ours, theirs = ours * 1.0001 + b * 0.0, theirs * 1.0001 + tb * 0.0
    compare(ours, theirs, [(b, tb)], "a chain of 900 operations")


def test_mixed_dtypes_and_devices():
    """Mixed dtypes give each leaf a gradient of its own dtype, as in PyTorch; mixed devices are
    refused by name."""
    a, ta = leaf(randn(2, 3, dtype=torch.float32))
    b, tb = leaf(randn(2, 3, dtype=torch.float64, seed=1))
    compare(a * b + a, ta * tb + ta, [(a, ta), (b, tb)], "float32 * float64")
    h, th = leaf(randn(2, 3, dtype=torch.float16))
    compare((h * 2).sum(), (th * 2).sum(), [(h, th)], "float16")
    meta = Tensor(torch.ones(2, 3).to("meta"), requires_grad=True)
    assert judge(lambda: a + meta, names=("meta",))[0] == "error"
    assert judge(lambda: a @ Tensor(torch.ones(3, 2, dtype=torch.float64)),
                 names=("shape",))[0] == "error"
    m, tm = leaf(randn(2, 3).to("meta"))
    compare((m @ m.T).relu().log_softmax(-1).mean(), (tm @ tm.T).relu().log_softmax(-1).mean(),
            [(m, tm)], "meta")


def test_huge_broadcast_is_refused():
    """Operands whose broadcast would need 2^43 bytes: the allocator refuses, and the error names
    the shapes."""
    big = Tensor(torch.ones(2 ** 20, 1).expand(2 ** 20, 1), requires_grad=True)
    outcome, e = judge(lambda: big * Tensor(torch.ones(1, 2 ** 20)), names=("shape",))
    assert outcome == "error"


# ---------------------------------------------------------------- unbroadcast

@FAST
@given(grad=bad_inputs("tensor"),
       shape=st.sampled_from([(3, 4), (4,), (1, 1), (), (0, 4), (5,), None, "ab", 3, (1.5,),
                              (-1, 4), [1, 4],
                              torch.Size([3, 1])]))
def test_unbroadcast(grad, shape):
    """unbroadcast against torch's sum_to_size where it applies; a bad grad or shape is refused by
    name."""
    outcome, value = judge(A.unbroadcast, grad, shape, names=("grad", "shape"))
    if outcome == "result":
        expected = grad.sum_to_size(tuple(shape)) if len(shape) else grad.sum()
        same(value, expected, f"unbroadcast({tuple(grad.shape)}, {shape})")


# ---------------------------------------------------------------- no_grad

def test_no_grad():
    """No graph inside, restored after an error and when nested, usable as a decorator and more
    than once."""
    a = Tensor(randn(2), requires_grad=True)
    guard = A.no_grad()
    with guard: out = a * 2
    record_correct(not out.requires_grad and out.parents == (), "no graph inside no_grad")
    with pytest.raises(KeyError):
        with A.no_grad(): raise KeyError("inside")
    record_correct((a * 2).requires_grad, "recording back on after an error")
    with A.no_grad():
        with A.no_grad(): pass
        record_correct(not (a * 2).requires_grad, "inner block restores the outer setting")
    evaluate = A.no_grad()(lambda t: t * 2)
    record_correct(not evaluate(a).requires_grad and not evaluate(a).requires_grad
                   and (a * 2).requires_grad,
                   "decorator, called twice")


# ---------------------------------------------------------------- draw_graph

def test_draw_graph():
    """draw_graph refuses a root, names or ax of the wrong kind by name; draws leaves, data-only
    graphs and reused tensors."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    w = Tensor(randn(2, 1), requires_grad=True)
    loss = ((Tensor(randn(3, 2)) @ w).relu() * w.sum()).mean()
    for bad in NOT_TENSORS + [torch.ones(2)]:
        assert judge(A.draw_graph, bad, names=("root",))[0] == "error"
    for bad in ("w", [w], 3):
        assert judge(A.draw_graph, loss, bad, names=("names",))[0] == "error"
    for bad in ("ax", 3, plt):
        assert judge(A.draw_graph, loss, ax=bad, names=("ax",))[0] == "error"
    for root in (loss, Tensor(1.0)):
        outcome, ax = judge(A.draw_graph, root, {w: "w", loss: 7})
        record_correct(outcome == "result" and len(ax.texts) >= 1, "a drawing")
    plt.close("all")
    loss.backward()
    # the graph was freed
    with pytest.raises(RuntimeError, match="second time"): A.draw_graph(loss)


# ---------------------------------------------------------------- cross_entropy

@FAST
@given(targets=st.sampled_from([torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0, 1, 4]),
                                torch.tensor([0, -1, 2]), torch.tensor([0, 1]),
                                torch.tensor([[0, 1, 2]]), torch.tensor(1),
                                torch.tensor([0, 1, 2], dtype=torch.uint8),
                                torch.tensor([0, 1, 2], dtype=torch.int32),
                                torch.tensor([0, 1, 2], dtype=torch.uint16),
                                torch.tensor([True, False, True]),
                                torch.tensor([0, 1, 2]).to("meta"), [0, 1, 2], None,
                                np.array([0, 1, 2]),
                                torch.tensor([0, 1, 2, 3, 0, 1])[::2], torch.tensor([3, 3, 3]),
                                torch.tensor([0, 1, 2 ** 40])]))
def test_cross_entropy_targets(targets):
    """Targets of the wrong kind, dtype, length, range or device: refused by name; strided int64
    targets work."""
    logits, t_logits = leaf(randn(3, 4))
    outcome, loss = judge(A.cross_entropy, logits, targets, names=("targets",))
    if outcome == "result":   # any integer dtype, as chapter 6's cross_entropy (core's check)
        compare(loss, F.cross_entropy(t_logits, targets.long()), [(logits, t_logits)],
                "cross_entropy")


@FAST
@given(logits=bad_inputs("tensor")
       | st.sampled_from([torch.zeros(3, 0), torch.full((3, 4), float("nan"))]))
def test_cross_entropy_logits(logits):
    """logits as a plain value, or an odd tensor wrapped as a Tensor: F.cross_entropy's value and
    gradient, or an error."""
    targets = torch.tensor([0, 1, 2])
    assert judge(A.cross_entropy, logits, targets, names=("logits",))[0] == "error"   # not a Tensor
    if not isinstance(logits, torch.Tensor) or logits.dtype in (torch.bool, torch.complex64): return
    ours, theirs = leaf(logits)
    outcome, loss = judge(A.cross_entropy, ours, targets.to(logits.device),
                          names=("logits", "targets"))
    if outcome == "result":
        compare(loss, F.cross_entropy(theirs, targets.to(logits.device)), [(ours, theirs)],
                "cross_entropy")


def test_cross_entropy_empty_batch():
    outcome, e = judge(A.cross_entropy, Tensor(torch.zeros(0, 4)),
                       torch.zeros(0, dtype=torch.int64), names=("empty batch",))
    assert outcome == "error" and "0 rows" in str(e)


# ---------------------------------------------------------------- conv2d

def conv_leaves(n=2, c_in=3, h=5, w=5, c_out=4, k=3):
    x, tx = leaf(randn(n, c_in, h, w))
    weight, tw = leaf(randn(c_out, c_in, k, k, seed=1))
    bias, tb = leaf(randn(c_out, seed=2))
    return (x, tx), (weight, tw), (bias, tb)


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["x", "weight", "bias"]), wrap=st.booleans())
def test_conv2d_bad_tensors(bad, which, wrap):
    """x, weight or bias a bad value, or an odd tensor as a Tensor: F.conv2d's value and gradients,
    or an error naming it."""
    pairs = dict(zip(("x", "weight", "bias"), conv_leaves()))
    if wrap and isinstance(bad, torch.Tensor) and bad.dtype not in (torch.bool, torch.complex64):
        pairs[which] = leaf(bad)
    else: pairs[which] = (bad, bad)
    args = [pairs[k][0] for k in ("x", "weight", "bias")]
    outcome, out = judge(A.conv2d, *args, names=(which,))
    if outcome == "result":
        expected = F.conv2d(*[pairs[k][1] for k in ("x", "weight", "bias")])
        compare(out, expected, list(pairs.values()), f"conv2d with {which} = {bad!r:.40}")


@FAST
@given(value=st.sampled_from(NOT_INTS + BAD_INTS
                             + [(1, 2, 3), (1,), (1, None), "ab", (2.0, 2), 10 ** 6]),
       which=st.sampled_from(["stride", "padding"]))
def test_conv2d_bad_geometry(value, which):
    """stride and padding: ints or pairs of ints (stride at least 1, padding at least 0), a padding
    that fits in memory."""
    (x, _), (weight, _), (bias, _) = conv_leaves()
    outcome, out = judge(A.conv2d, x, weight, bias, **{which: value}, names=(which,))
    valid = type(value) is int and value == {"stride": 10 ** 6, "padding": 0}[which]
    record_correct((outcome == "result") == valid, f"conv2d({which}={value!r}): {outcome}")


def test_conv2d_edge_cases():
    """Integer-like strides, empty batches, no kernels, transposed and expanded images, aliasing,
    NaN: as F.conv2d."""
    cases = [dict(stride=np.int64(2), padding=torch.tensor(1)), dict(stride=[2, 1], padding=(0, 1))]
    for kw in cases:
        (x, tx), (weight, tw), (bias, tb) = conv_leaves()
        torch_kw = {k: tuple(map(int, v)) if isinstance(v, (list, tuple)) else int(v)
                    for k, v in kw.items()}
        compare(A.conv2d(x, weight, bias, **kw), F.conv2d(tx, tw, tb, **torch_kw),
                [(x, tx), (weight, tw), (bias, tb)], f"conv2d {kw}")
    (x, tx), (weight, tw), _ = conv_leaves(n=0)
    compare(A.conv2d(x, weight), F.conv2d(tx, tw), [(x, tx), (weight, tw)], "empty batch")
    x, tx = leaf(randn(2, 3, 5, 5))
    empty_kernels = Tensor(torch.empty(0, 3, 3, 3, dtype=torch.float64), requires_grad=True)
    outcome, out = judge(A.conv2d, x, empty_kernels)
    record_correct(outcome == "result" and out.shape == (2, 0, 3, 3), "no kernels: an empty output")
    out.backward(torch.ones(2, 0, 3, 3, dtype=torch.float64))
    same(x.grad, torch.zeros_like(tx), "no kernels: a zero gradient")
    x, tx = leaf(randn(2, 3, 6, 5).transpose(2, 3))
    weight, tw = leaf(randn(3, 3, 2, 3).transpose(2, 3))
    compare(A.conv2d(x, weight, stride=2), F.conv2d(tx, tw, stride=2), [(x, tx), (weight, tw)],
            "transposed views")
    x, tx = leaf(randn(1, 3, 1, 5).expand(2, 3, 5, 5))
    weight, tw = leaf(randn(1, 3, 3, 3))
    compare(A.conv2d(x, weight), F.conv2d(tx, tw), [(x, tx), (weight, tw)], "expanded images")
    s, ts = leaf(randn(2, 2, 2, 2))
    compare(A.conv2d(s, s, padding=1), F.conv2d(ts, ts, padding=1), [(s, ts)], "x is weight")
    nan = randn(1, 2, 4, 4)
    nan[0, 0, 1, 1], nan[0, 1, 2, 2] = float("nan"), float("inf")
    (x, tx), (weight, tw) = leaf(nan), leaf(randn(2, 2, 3, 3))
    compare(A.conv2d(x, weight), F.conv2d(tx, tw), [(x, tx), (weight, tw)], "NaN and inf")
    x32 = Tensor(randn(2, 3, 5, 5, dtype=torch.float32))
    assert judge(A.conv2d, x32, conv_leaves()[1][0], names=("dtype",))[0] == "error"
    x, tx = leaf(randn(1, 1, 4, 4).to("meta"))
    weight, tw = leaf(randn(1, 1, 3, 3).to("meta"))
    compare(A.conv2d(x, weight), F.conv2d(tx, tw), [(x, tx), (weight, tw)], "meta")


# ---------------------------------------------------------------- the public engine API (issue 25)


def test_make_node_contract():
    "make_node: records only if a parent requires grad; sums broadcasts; refuses bad parts."
    a, ta = leaf(randn(2, 3))
    rows = randn(4, 2, 3, seed=1)
    out = A.make_node(rows * a.data, (rows, a), lambda g: (None, g * rows), "scale")
    record_correct(out.parents[1] is a and out.op == "scale" and out.requires_grad, "recorded")
    compare(out, rows * ta, [(a, ta)], "make_node with a broadcast operand")
    with A.no_grad():
        off = A.make_node(a.data * 2, (a,), lambda g: (g * 2,), "double")
    record_correct(off.parents == () and off.op == "" and not off.requires_grad, "no_grad: a leaf")
    data_only = A.make_node(
        torch.ones(2), (Tensor(torch.ones(2)), 3.0), lambda g: (g, None), "plus"
    )
    record_correct(
        not data_only.requires_grad and data_only.parents == (), "no operand requires grad"
    )
    for bad in (
        (a.data, [a], lambda g: (g,), "op"),
        (a.data, (a,), "not callable", "op"),
        ([1.0], (a,), lambda g: (g,), "op"),
        (a.data, (a,), lambda g: (g,), 3),
    ):
        assert judge(A.make_node, *bad, names=("make_node",))[0] == "error"
    for backward, what in (
        (lambda g: g, "a tuple of 1"),
        (lambda g: (g, g), "a tuple of 1"),
        (lambda g: (torch.ones(7),), "does not fit"),
        (lambda g: ("g",), "torch tensor"),
    ):
        node = A.make_node(a.data * 1, (a,), backward, "custom")
        outcome, e = judge(
            lambda: node.backward(torch.ones(2, 3, dtype=torch.float64)), names=("custom",)
        )
        assert outcome == "error" and what in str(e), e


def test_topological_order_and_backward_steps():
    "topological_order: each tensor before its operands; backward_steps: backward's gradients."
    x, tx = leaf(randn(3))
    w, tw = leaf(randn(3, seed=1))
    h = (x * w).tanh()
    out = (h * h + h * x).sum()
    order = A.topological_order(out)
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        for p in t.parents:
            if isinstance(p, Tensor) and p.requires_grad:
                record_correct(position[id(t)] < position[id(p)], "a tensor before its operands")
    record_correct(
        order[0] is out and len(order) == len({id(t) for t in order}), "root first, once each"
    )
    record_correct(A.topological_order(Tensor(1.0)) == [], "a leaf without grad: nothing")
    steps = A.backward_steps(out)
    record_correct(x.grad is None and w.grad is None, "backward_steps stores no .grad")
    layout = A.graph_layout(out)
    th = (tx * tw).tanh()
    (th * th + th * tx).sum().backward()
    done = {s["node"]: s["grad"] for s in steps}
    labels = [n["label"] for n in layout["nodes"]]
    leaf_ids = [n["id"] for n in layout["nodes"] if n["kind"] == "leaf"]
    record_correct(
        len(leaf_ids) == 2 and len(steps) == len(order), f"ids shared with the layout: {labels}"
    )
    got = sorted((done[i] for i in leaf_ids), key=lambda t: t.sum().item())
    want = sorted((tx.grad, tw.grad), key=lambda t: t.sum().item())
    for ours, theirs in zip(got, want):
        same(ours, theirs, "backward_steps' leaf gradients")
    for s in steps:
        record_correct(s["node"] not in s["totals"], "a finished tensor is no longer pending")
    out.backward()  # not freed by backward_steps
    same(x.grad, tx.grad, "backward after backward_steps")
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        A.backward_steps(out)
    assert judge(A.topological_order, "x", names=("root",))[0] == "error"
    assert judge(A.backward_steps, x.data, names=("root",))[0] == "error"


def test_graph_layout_shows_reuse_and_fits():
    "x*x + x: three edges from x; no overlaps; <= 900 px for 20 nodes; freed graphs say so."
    x = Tensor(2.0, requires_grad=True)
    layout = A.graph_layout(x * x + x, names={x: "x"})
    xid = next(n["id"] for n in layout["nodes"] if n["label"] == "x")
    from_x = [e for e in layout["edges"] if e["src"] == xid]
    targets = sorted((layout["nodes"][e["dst"]]["label"], e["slot"]) for e in from_x)
    record_correct(targets == [("*", 0), ("*", 1), ("+", 1)], f"edges from x: {targets}")
    record_correct(
        len({tuple(map(tuple, e["points"])) for e in from_x}) == 3, "three distinct paths"
    )
    g = torch.Generator().manual_seed(0)
    leaves = [Tensor(torch.randn(2, generator=g), requires_grad=True) for _ in range(6)]
    t = leaves[0]
    for a, b in zip(leaves[1:], leaves[:-1]):
        t = (t * a).relu() + b  # a deep graph with long edges
    wide = sum((leaf * 2 for leaf in leaves[:4]), Tensor(torch.zeros(2)))
    for root in (t, wide, (leaves[0].reshape(1, 2) @ leaves[1].reshape(2, 1)).sum()):
        layout = A.graph_layout(root)
        nodes = layout["nodes"]
        boxes = [(n["x"], n["y"], len(n["label"]) * 6.7 + 18, 24) for n in nodes]
        for i, p in enumerate(boxes):
            for q in boxes[i + 1 :]:
                record_correct(
                    not (abs(p[0] - q[0]) < (p[2] + q[2]) / 2 and abs(p[1] - q[1]) < 24),
                    "two node boxes overlap",
                )
        record_correct(
            all(0 <= n["x"] <= layout["width"] and 0 <= n["y"] <= layout["height"] for n in nodes),
            "nodes inside the figure",
        )
        if len(nodes) <= 21:
            record_correct(layout["width"] <= 900, f"{layout['width']:.0f} px wide")
        record_correct(
            {"id", "label", "kind", "x", "y", "shape", "name"} <= set(nodes[0]), "node keys"
        )
    loss = (leaves[0] * 3).sum()
    loss.backward()
    for f in (A.graph_layout, A.draw_graph):
        with pytest.raises(RuntimeError, match="retain_graph=True"):
            f(loss)
    kept = (leaves[0] * 3).sum()
    kept.backward(retain_graph=True)
    record_correct(len(A.graph_layout(kept)["nodes"]) == 3, "retain_graph keeps the graph to draw")
    assert judge(lambda: A.graph_layout(kept, [1]), names=("names",))[0] == "error"


# ---------------------------------------------------------------- safety like PyTorch's


def test_in_place_changes_are_caught_as_pytorch_catches_them():
    "A saved tensor changed in place: refused, naming the operation, where PyTorch refuses."
    cases = {
        "*": lambda t: t * t,
        "exp": lambda t: t.exp(),
        "relu": lambda t: t.relu(),
        "@": lambda t: t @ t.T,
        "/": lambda t: 1 / (t + 3),
        "log": lambda t: (t * t + 1).log(),
        "tanh": lambda t: t.tanh(),
    }
    for op, f in cases.items():
        a, ta = leaf(randn(2, 2))
        out, tout = f(a), f(ta)
        a.data.add_(1)
        with torch.no_grad():
            ta.add_(1)
        theirs_refused = False
        try:
            tout.sum().backward()
        except RuntimeError:
            theirs_refused = True
        try:
            out.sum().backward()
            ours_refused = False
        except RuntimeError as e:
            ours_refused = True
            record_correct(
                "in place" in str(e) and "'" in str(e),
                f"{op}: the message names the operation: {e}",
            )
        record_correct(
            ours_refused == theirs_refused,
            f"{op}: refused {ours_refused}, PyTorch {theirs_refused}",
        )
    s, ts = leaf(randn(3))
    total = (s + 1).sum()  # + saves nothing: allowed, as in PyTorch
    s.data.mul_(2)
    total.backward()
    same(s.grad, torch.ones(3, dtype=torch.float64), "an addition does not care")


def test_in_place_operators():
    "p -= x on a Tensor that requires grad: shows p.data -= lr * p.grad; under no_grad: in place."
    for update in (
        lambda p: p.__isub__(1.0),
        lambda p: p.__iadd__(1.0),
        lambda p: p.__imul__(2.0),
        lambda p: p.__itruediv__(2.0),
    ):
        p = Tensor(randn(2), requires_grad=True)
        with pytest.raises(RuntimeError, match=r"p\.data -= lr \* p\.grad"):
            update(p)
    p = Tensor(torch.ones(2), requires_grad=True)
    before = p
    with A.no_grad():
        p -= 0.5 * torch.ones(2)
    record_correct(
        p is before and torch.equal(p.data, torch.full((2,), 0.5)), "no_grad: updated in place"
    )
    q = Tensor(torch.ones(2))
    q *= Tensor(torch.full((2,), 3.0))
    record_correct(torch.equal(q.data, torch.full((2,), 3.0)), "no grad anywhere: in place")
    assert judge(lambda: q.__iadd__("x"), names=("+=",))[0] == "error"


def test_every_grad_is_its_own_contiguous_tensor():
    "No .grad shares storage with another .grad or the seed; every .grad is contiguous."
    a, b = Tensor(torch.ones(2, 3), requires_grad=True), Tensor(
        torch.ones(2, 3), requires_grad=True
    )
    seed = torch.ones(2, 3)
    (a + b).backward(seed)
    record_correct(
        a.grad.data_ptr() != b.grad.data_ptr()
        and seed.data_ptr() not in (a.grad.data_ptr(), b.grad.data_ptr()),
        "shared storage",
    )
    for make in (
        lambda w: w.sum(),
        lambda w: w.mean(),
        lambda w: w.reshape(6).sum(),
        lambda w: w.T.sum(),
        lambda w: w.max(),
        lambda w: w[0].sum(),
    ):
        w = Tensor(torch.ones(2, 3), requires_grad=True)
        make(w).backward()
        record_correct(w.grad.is_contiguous() and w.grad.stride() == (3, 1), "a contiguous .grad")
        w.grad.mul_(0.5)
    leafy = Tensor(torch.ones(2), requires_grad=True)
    hidden = leafy * 2
    hidden.sum().backward()
    record_correct(
        hidden.grad is None and leafy.grad is not None, ".grad for leaves only, as in PyTorch"
    )


def test_torch_operands_and_functions():
    "Torch tensors that require grad refused; torch.fn(t) points to the method; operators defer."
    t = Tensor(randn(3), requires_grad=True)
    tracked = torch.ones(3, dtype=torch.float64, requires_grad=True)
    for call in (
        lambda: t * tracked,
        lambda: tracked + t,
        lambda: t - tracked,
        lambda: tracked @ t,
    ):
        outcome, e = judge(call, names=("requires grad",))
        assert outcome == "error" and "detach()" in str(e)
    record_correct(not Tensor(tracked).data.requires_grad, "Tensor(t) detaches")
    for fn, method in ((torch.exp, "t.exp"), (torch.tanh, "t.tanh"), (torch.relu, "t.relu")):
        outcome, e = judge(fn, t, names=(method,))
        assert outcome == "error"
    assert judge(torch.sigmoid, t, names=("engine's operations",))[0] == "error"
    compare(
        torch.ones(3, dtype=torch.float64) * t,
        torch.ones(3, dtype=torch.float64) * t.data.clone().requires_grad_(),
        [],
        "a torch tensor on the left",
    )
    record_correct(
        np.ones(3) is not None and judge(lambda: np.ones(3) * t, names=("ndarray",))[0] == "error",
        "NumPy leaves the operation to Tensor",
    )


# ---------------------------------------------------------------- the operations learners reach for


@st.composite
def index_cases(draw):
    "A shape and an index into it: ints, slices (positive steps, as torch), index tensors."
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    parts = []
    for n in shape[: draw(st.integers(1, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "tensor", "all"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            parts.append(
                slice(draw(st.integers(-n, n)), draw(st.integers(-n, n)), draw(st.integers(1, 3)))
            )
        elif kind == "tensor":
            parts.append(
                torch.tensor(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
            )
        else:
            parts.append(slice(None))
    return (
        shape,
        parts[0] if len(parts) == 1 and draw(st.booleans()) else tuple(parts),
        draw(st.integers(0, 99)),
    )


@FAST
@given(index_cases())
def test_indexing_against_torch(case):
    "t[index], ints, slices, index tensors with repeats: values and summed gradients as PyTorch's."
    shape, index, seed = case
    a, ta = leaf(randn(*shape, seed=seed))
    try:
        expected = ta[index]
    except IndexError:  # index tensors that do not broadcast together
        with pytest.raises(IndexError):
            a[index]
        return
    compare(a[index], expected, [(a, ta)], f"t{list(shape)}[{index!r}]")


def test_indexing_odd_cases():
    "Masks, None, Ellipsis, lists, a Tensor as index; out of range: torch's IndexError, as PyTorch."
    for index in (
        torch.tensor([True, False, True]),
        (None, Ellipsis, 1),
        [2, 2, 0],
        (Ellipsis, 0),
        Tensor(torch.tensor([1, 1])),
        torch.tensor([[0, 2], [2, 2]]),
    ):
        a, ta = leaf(randn(3, 2))
        compare(a[index], ta[_plain(index)], [(a, ta)], f"t[{index!r}]")
    with pytest.raises(IndexError):
        Tensor(randn(3))[3]


def _plain(index):
    return index.data if isinstance(index, Tensor) else index


@FAST
@given(
    shape=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    dim=st.integers(-3, 2),
    keepdim=st.booleans(),
    ties=st.booleans(),
    seed=st.integers(0, 99),
)
def test_max_against_torch(shape, dim, keepdim, ties, seed):
    "max() and max(dim): values, indices, gradients as PyTorch's, with ties; bad dims refused."
    data = torch.randn(
        tuple(shape), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    if ties:
        data = data.round()  # many equal entries
    a, ta = leaf(data)
    compare(a.max(), ta.max(), [(a, ta)], "max()")
    a, ta = leaf(data)
    outcome, out = judge(lambda: a.max(dim, keepdim=keepdim), names=("dim",))
    if outcome == "result":
        expected = ta.max(dim, keepdim=keepdim)
        record_correct(torch.equal(out.indices, expected.indices), "the indices torch chose")
        compare(out.values, expected.values, [(a, ta)], f"max({dim}, keepdim={keepdim})")


def test_tanh_item_dtype_ndim_detach():
    "tanh against PyTorch (large inputs too); item, dtype, ndim and detach as PyTorch's."
    a, ta = leaf(torch.tensor([-30.0, -1.0, 0.0, 0.5, 40.0], dtype=torch.float64))
    compare(a.tanh() * a, ta.tanh() * ta, [(a, ta)], "tanh")
    for data in (torch.tensor(2.5), torch.ones(1, 1, dtype=torch.float64), torch.arange(3)):
        t = Tensor(data)
        record_correct((t.dtype, t.ndim) == (data.dtype, data.ndim), "dtype and ndim")
        if data.numel() == 1:
            record_correct(t.item() == data.item() and type(t.item()) is type(data.item()), "item")
    with pytest.raises(RuntimeError):
        Tensor(torch.ones(2)).item()  # torch's own refusal, as in PyTorch
    w = Tensor(randn(2), requires_grad=True)
    cut = (w * 2).detach()
    record_correct(
        not cut.requires_grad and cut.parents == () and cut.grad is None, "detach: a new leaf"
    )
    (cut * w).sum().backward()
    same(w.grad, cut.data, "the detached factor is a constant")
