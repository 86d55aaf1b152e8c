"""Adversarial inputs for `foundations.modules` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches an independent reference (plain
torch, autograd), or raise a TypeError/ValueError from the library that names the argument. Errors
that are part of a protocol (NotImplementedError for a subclass that forgets a method, RuntimeError
for a backward pass before any forward pass) are checked directly. Run:
`pytest tests/library/test_adversarial_modules.py`.
"""
import copy, pickle
import numpy as np, pytest, torch
from torch import nn
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs)
import foundations.modules as M
from foundations.init import xavier_init

FAST = settings(max_examples=15, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(M.__all__) == {"Model", "LayerFunction", "Relu", "Lin", "Mse", "MyRelu",
                              "LinearLayer", "Module"}


def close(result, expected, what, tol=None):
    """Record whether `result` is `expected`: shape, dtype and device, values up to rounding (NaN
    where NaN)."""
    same_kind = (result.shape == expected.shape and result.dtype == expected.dtype
                 and result.device == expected.device)
    record_correct(same_kind,
                   f"{what}: shape/dtype/device {tuple(result.shape)} {result.dtype} "
                   f"{result.device}")
    if result.device.type == "meta": return
    if not result.is_floating_point(): record_correct(torch.equal(result, expected), what); return
    if tol is None: tol = 1e-2 if result.dtype in (torch.float16, torch.bfloat16) else 1e-5
    record_correct(torch.allclose(result.double(), expected.double(), rtol=tol, atol=tol,
                                  equal_nan=True), what)


# ---- Lin: weights and bias at construction, then the input at the call

@FAST
@given(bad=bad_inputs("tensor"), side=st.sampled_from(["w", "b"]))
def test_lin_with_one_bad_or_odd_parameter(bad, side):
    """Lin(w, b) with one bad or odd argument: a clear error naming it, or a layer that computes x @
    w + b."""
    if side == "w":
        w, b = bad, torch.randn(getattr(bad, "shape", (3, 4))[-1] if getattr(bad, "ndim", 0) else 4)
    else:
        w, b = torch.randn(3,
                           getattr(bad, "shape", (4,))[-1] if getattr(bad, "ndim", 0) else 4), bad
    outcome, layer = judge(M.Lin, w, b, names=(f"{side} ", "w, b", "one dtype"))
    if outcome == "result" and w.is_floating_point() and w.device.type != "meta":
        x = torch.randn(5, w.shape[0], dtype=w.dtype)
        close(layer(x), x @ w + b, f"Lin with {side} = {bad!r:.60}")


@FAST
@given(bad=bad_inputs("tensor"))
def test_lin_called_on_bad_or_odd_input(bad):
    """A Lin layer called on a bad or odd input: a clear error, or x @ w + b and gradients that
    match autograd."""
    w, b = torch.randn(4, 2), torch.randn(2)
    layer = M.Lin(w, b)
    outcome, out = judge(layer, bad, names=("x ", "x,", "lin"))
    if outcome == "result":
        close(out, bad @ w + b, f"Lin on {bad!r:.60}")


def test_lin_backward_matches_autograd_on_views_and_tied_weights():
    "Transposed and sliced inputs, one weight matrix in two layers: .g must match autograd."
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64).T   # non-contiguous
    first, second = M.Lin(w, b), M.Lin(w, b)
    out = second(first(x))
    out.g = torch.ones_like(out)
    for t in (x, w, b): t.g = None
    second.backward(); first.backward()
    leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    ((leaves[0] @ leaves[1] + leaves[2]) @ leaves[1] + leaves[2]).sum().backward()
    for t, leaf in zip((x, w, b), leaves): close(t.g, leaf.grad, "tied Lin gradient")


# ---- Relu, Mse, MyRelu: elementwise and loss layers

@FAST
@given(bad=bad_inputs("tensor"))
def test_relu_layer_and_my_relu_on_bad_or_odd_input(bad):
    """Relu() and MyRelu.apply on any input: a clear error, or torch.relu's values in the input's
    dtype."""
    for fn in (M.Relu(), M.MyRelu.apply):
        outcome, out = judge(fn, bad, names=("x ", "inp"))
        if outcome == "result" and bad.dtype != torch.bool:
            close(out, bad.clamp_min(0), f"ReLU on {bad!r:.60}")


def test_relu_layer_backward_and_my_relu_gradcheck():
    "Relu's .g and MyRelu's backward against autograd, float64, including exact zeros and a view."
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    layer = M.Relu()
    out = layer(x)
    out.g = torch.arange(5.0, dtype=torch.float64)
    x.g = None
    layer.backward()
    close(x.g, torch.tensor([0.0, 0.0, 0.0, 3.0, 4.0], dtype=torch.float64),
          "Relu backward at the kink")
    t = torch.randn(6, 4, generator=g, dtype=torch.float64).T
    t = (t + 0.1 * t.sign()).requires_grad_()
    record_correct(torch.autograd.gradcheck(M.MyRelu.apply, (t,)),
                   "MyRelu gradcheck on a transposed view")


@FAST
@given(bad=bad_inputs("tensor"), side=st.sampled_from(["output", "targ"]))
def test_mse_layer_on_bad_or_odd_input(bad, side):
    "Mse()(inp, targ) with one bad argument: a clear error, or the mean squared error."
    other = torch.randn(getattr(bad, "shape", (3,))[0] if getattr(bad, "ndim", 0) else 3)
    inp, targ = (bad, other) if side == "output" else (other, bad)
    outcome, loss = judge(M.Mse(), inp, targ, names=("output", "targ", "mse"))
    if outcome == "result" and inp.device.type != "meta":
        expected = ((inp.reshape(-1).double() - targ.reshape(-1).double()) ** 2).mean()
        record_correct(loss.ndim == 0 and (torch.isnan(expected) and torch.isnan(loss) or
                                           torch.allclose(loss.double(), expected, rtol=1e-2)),
                       "Mse value")


# ---- Model: the layer list

def test_model_refuses_a_layer_object_used_twice():
    """One Relu object at two places of a layer list: refused before the forward pass, naming both
    places."""
    g = torch.Generator().manual_seed(2)
    w1, b1 = torch.randn(3, 4, generator=g), torch.zeros(4)
    w2, b2 = xavier_init(4, 1, generator=g), torch.zeros(1)
    model = M.Model(w1, b1, w2, b2)
    shared = M.Relu()
    model.layers = [M.Lin(w1, b1), shared, M.Lin(torch.randn(4, 4, generator=g), b1), shared,
                    M.Lin(w2, b2)]
    outcome, e = judge(model, torch.randn(5, 3, generator=g), torch.randn(5, generator=g),
                       names=("layers[1]",))
    assert outcome == "error" and "layers[3]" in str(e)


def test_model_bad_weights_inputs_and_order_of_calls():
    """Bad weights fail at construction, bad inputs at the call; backward before forward is a
    RuntimeError."""
    g = torch.Generator().manual_seed(3)
    w1, b1 = torch.randn(3, 4, generator=g), torch.zeros(4)
    w2, b2 = torch.randn(4, 1, generator=g), torch.zeros(1)
    for args in ((w1.T, b1, w2, b2), (w1, b1, w2, torch.zeros(2)), (w1.double(), b1, w2, b2),
                 ("w", b1, w2, b2)):
        assert judge(M.Model, *args, names=("w", "b"))[0] == "error"
    model = M.Model(w1, b1, w2, b2)
    with pytest.raises(RuntimeError, match="call model"): model.backward()
    for x, y in ((torch.randn(5, 2), torch.randn(5)), (torch.randn(5, 3), torch.randn(4)),
                 (None, torch.randn(5)),
                 (torch.randn(5, 3), "y"),
                 (torch.randn(5, 3, dtype=torch.float64), torch.randn(5))):
        assert judge(model, x, y, names=("x", "output", "targ", "w"))[0] == "error"
    x, y = torch.randn(5, 3, generator=g), torch.randn(5, generator=g)
    loss = model(x, y)
    model.backward()
    leaves = [t.detach().clone().requires_grad_() for t in (w1, b1, w2, b2)]
    hidden = torch.relu(x @ leaves[0] + leaves[1])
    reference = ((hidden @ leaves[2] + leaves[3]).squeeze(1) - y).pow(2).mean()
    reference.backward()
    close(loss, reference.detach(), "Model loss")
    for t, leaf in zip((w1, b1, w2, b2), leaves): close(t.g, leaf.grad, "Model gradient")


def test_layer_function_protocol_errors():
    """A subclass that forgets forward or bwd is told which one; backward before any call is a
    RuntimeError."""
    class NoBwd(M.LayerFunction):
        def forward(self, x): return x * 2
    with pytest.raises(NotImplementedError, match="must define forward"):
        M.LayerFunction()(torch.ones(2))
    layer = NoBwd()
    with pytest.raises(RuntimeError, match="call the layer"): layer.backward()
    layer(torch.ones(2))
    with pytest.raises(NotImplementedError, match="must define bwd"): layer.backward()
    assert repr(layer) == "NoBwd()"


# ---- LinearLayer: sizes, options, inputs

@FAST
@given(bad=bad_inputs("int"), side=st.sampled_from(["n_in", "n_out"]))
def test_linear_layer_with_a_bad_size(bad, side):
    "LinearLayer(n_in, n_out) with a bad size: a clear error that names it."
    sizes = {"n_in": 3, "n_out": 2, side: bad}
    outcome, e = judge(M.LinearLayer, sizes["n_in"], sizes["n_out"], names=(side,))
    assert outcome == "error"


def test_linear_layer_sizes_options_and_huge_sizes():
    """NumPy sizes are accepted; bad dtype, init and huge sizes are refused; Xavier init gives
    Xavier's scale."""
    layer = M.LinearLayer(np.int64(3), np.int32(2))
    record_correct(layer.weight.shape == (2, 3), "np.int64 sizes")
    for kwargs, names in (({"dtype": torch.int64}, ("dtype",)), ({"init": "xavier"}, ("init",)),
                          ({"init": None}, ("init",))):
        assert judge(M.LinearLayer, 3, 2, names=names, **kwargs)[0] == "error"
    assert judge(M.LinearLayer, 2 ** 40, 2 ** 40,
                 names=("n_in",))[0] == "error"   # refused before allocating
    wide = M.LinearLayer(2000, 300, init=xavier_init, generator=torch.Generator().manual_seed(0))
    record_correct(abs(wide.weight.std().item() * 2000 ** 0.5 - 1) < 0.02, "Xavier scale")
    record_correct(wide.bias.abs().max().item() == 0, "zero bias")


@FAST
@given(bad=bad_inputs("tensor"))
def test_linear_layer_on_bad_or_odd_input(bad):
    "LinearLayer(4, 2) on a bad or odd input: a clear error naming x, or F.linear's result."
    layer = M.LinearLayer(4, 2, generator=torch.Generator().manual_seed(0))
    outcome, out = judge(layer, bad, names=("x ", "x,", "x must"))
    if outcome == "result":
        with torch.no_grad():
            close(out.detach(), torch.nn.functional.linear(bad, layer.weight, layer.bias),
                                    f"LinearLayer on {bad!r:.60}")


def test_linear_layer_dtype_and_device_mismatch_and_state_dict():
    """An input of another dtype or on another device is refused by name; the state_dict loads into
    nn.Linear."""
    layer = M.LinearLayer(4, 2)
    for x in (torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, device="meta")):
        outcome, e = judge(layer, x, names=("x",))
        assert outcome == "error" and "weight" in str(e)
    reference = nn.Linear(4, 2)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(3, 5, 4)
    with torch.no_grad(): close(layer(x), reference(x), "LinearLayer vs nn.Linear on a 3-D batch")


# ---- Module: automatic super().__init__()

class Late(M.Module):
    "A Module subclass that registers a parameter before its late super().__init__()."
    def __init__(self, n):
        self.a = nn.Parameter(torch.ones(n))
        super().__init__()
        self.lin = M.LinearLayer(n, 1)
    def forward(self, x): return self.lin(x * self.a)


def test_module_subclasses_copy_pickle_and_late_super():
    """Subclasses with and without __init__, a late super().__init__(), deepcopy and pickle all keep
    parameters."""
    late = Late(3)
    names = [name for name, _ in late.named_parameters()]
    record_correct(names == ["a", "lin.weight", "lin.bias"], f"Late parameters {names}")
    for twin in (copy.deepcopy(late), pickle.loads(pickle.dumps(late))):
        record_correct([n for n, _ in twin.named_parameters()] == names, "copied parameters")
        x = torch.randn(2, 3)
        with torch.no_grad(): close(twin(x), late(x), "copied module output")
    class Empty(M.Module):
        def forward(self, x): return x
    record_correct(list(Empty().parameters()) == [], "a subclass without __init__")
    with pytest.raises(TypeError):
        Late()   # a missing argument is Python's own error, as for nn.Module


def test_model_refuses_targ_that_is_its_input():
    """targ is x: the .g protocol would miss the path through targ (forward_and_backward refuses it
    too)."""
    model = M.Model(torch.ones(1, 3), torch.zeros(3), torch.ones(3, 1), torch.zeros(1))
    x = torch.ones(4, 1)
    outcome, e = judge(model, x, x, names=("targ",))
    assert outcome == "error" and isinstance(e, ValueError)


# ---- issue 27: one layer object in two places is blamed on the layer, not on lin_grad
# -------------
def test_a_relu_object_used_twice_by_hand():
    "Running the layers backward by hand, the reused Relu says so itself on its second backward."
    g = torch.Generator().manual_seed(0)
    relu = M.Relu()
    lins = [M.Lin(torch.randn(3, 3, generator=g), torch.zeros(3)) for _ in range(2)]
    last, loss = M.Lin(torch.randn(3, 1, generator=g), torch.zeros(1)), M.Mse()
    loss(last(relu(lins[1](relu(lins[0](torch.randn(5, 3, generator=g)))))),
         torch.randn(5, generator=g))
    for layer in (loss, last, relu, lins[1]): layer.backward()
    outcome, e = judge(relu.backward, names=("Relu",))
    assert outcome == "error" and isinstance(e, ValueError) and "Relu() twice" in str(e)


def test_backward_twice_on_one_forward_pass_is_still_allowed():
    "Model.backward() clears every .g first, so a second call gives the same gradients."
    g = torch.Generator().manual_seed(1)
    model = M.Model(torch.randn(3, 4, generator=g), torch.zeros(4), torch.randn(4, 1, generator=g),
                    torch.zeros(1))
    model(torch.randn(6, 3, generator=g), torch.randn(6, generator=g))
    model.backward()
    first = [p.g.clone() for p in model.params]
    model.backward()
    record_correct(all(torch.equal(a, p.g) for a, p in zip(first, model.params)), "backward twice")
