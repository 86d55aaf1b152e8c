"""Adversarial inputs for `foundations.numpy_edition` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches an independent reference (NumPy
itself, or float64 arithmetic written out here), or raise a TypeError/ValueError from the library
that
names the argument. Run: `pytest tests/library/test_adversarial_numpy_edition.py`.
"""
import numpy as np, pytest
from hypothesis import given, settings, strategies as st
from helpers.adversarial import judge, record_correct, NOT_INTS, BAD_INTS, NOT_NUMBERS, BAD_NUMBERS
import foundations.numpy_edition as N
from foundations.numpy_edition import GradArray

FAST = settings(max_examples=25, derandomize=True, deadline=None, database=None)
NOT_ARRAYS = [None, "x", 3, 2.5, [1.0, 2.0], [[1.0]], {"a": 1}, object()]


def test_every_public_name_is_covered():
    assert set(N.__all__) == {
        "check_array", "check_shapes", "check_column_or_vector", "check_matmul_args",
        "matmul_loops",
        "matmul_elementwise", "broadcast_shapes", "broadcast_to", "normalize", "matmul_broadcast",
        "matmul_einsum",
        "lin", "relu", "mse", "two_layer_net", "xavier_init", "kaiming_init", "activation_stds",
        "GradArray",
        "add_grad", "upstream_grad", "mse_grad", "relu_grad", "lin_grad", "forward_and_backward",
        "numerical_grad",
        "LayerFunction", "Relu", "Lin", "Mse", "Model",
        "match_shapes",
        "zero_grads"}   # imported from core unchanged (tested in test_adversarial_core.py)


def odd_arrays(shape=(3, 4)):
    """Arrays of the right kind that are edge cases: empty, 0-d, odd dtypes, NaN/inf, views,
    read-only."""
    a = np.random.default_rng(0).standard_normal(shape)
    return [np.array(1.5), np.empty((0, *shape[1:])), a.astype(np.int64), a > 0,
            a.astype(np.complex64),
            a.astype(np.float16), a.astype(np.float32), np.full(shape, np.nan),
            np.full(shape, np.inf),
            np.random.default_rng(1).standard_normal(shape[::-1]).T, np.broadcast_to(a[:1], shape),
            np.array([["a"] * shape[1]] * shape[0]), np.empty(shape, dtype=object)]


def bad_arrays(shape=(3, 4)): return st.sampled_from(NOT_ARRAYS + odd_arrays(shape))


def same(result, expected, what, exact=False):
    "A result must have the reference's shape and dtype, and its values (NaN where it has NaN)."
    result, expected = np.asarray(result), np.asarray(expected)
    record_correct(result.shape == expected.shape and result.dtype == expected.dtype,
                   f"{what}: shape/dtype {result.shape} {result.dtype} vs {expected.shape} "
                   f"{expected.dtype}")
    if exact: record_correct(np.array_equal(result, expected, equal_nan=True), f"{what}: values")
    else:
        record_correct(np.allclose(result, expected,
                                   rtol=1e-3 if result.dtype.itemsize <= 4 else 1e-10,
                                     atol=1e-3 if result.dtype.itemsize <= 4 else 1e-10,
                                   equal_nan=True), what)


MATMULS = [N.matmul_loops, N.matmul_elementwise, N.matmul_broadcast, N.matmul_einsum]


@FAST
@given(fn=st.sampled_from(MATMULS + [N.check_matmul_args]), bad=bad_arrays(),
       side=st.sampled_from("ab"))
def test_matmuls_one_bad_or_odd_matrix(fn, bad, side):
    """One matrix is bad or odd, the other a float64 matrix that fits it: a product equal to NumPy's
    @, or refused."""
    fitting = isinstance(bad, np.ndarray) and bad.ndim
    other_size = bad.shape[-1 if side == "a" else 0] if fitting else 4
    other = np.random.default_rng(2).standard_normal((other_size,
                                                      2) if side == "a" else (2, other_size))
    a, b = (bad, other) if side == "a" else (other, bad)
    outcome, value = judge(fn, a, b, names=(f"{side} ", "matmul"))
    if outcome == "result" and fn is not N.check_matmul_args:
        same(value, a @ b, f"{fn.__name__} with {side} = {bad!r:.40}")


@pytest.mark.parametrize("fn", MATMULS)
def test_matmuls_edge_shapes(fn):
    """Empty, 1x1, transposed, one array twice, stride-0 views, integers: NumPy's @ exactly or to
    rounding."""
    a = np.random.default_rng(3).standard_normal((4, 4))
    for x, y in [(np.empty((0, 3)), np.ones((3, 2))), (np.ones((2, 0)), np.ones((0, 3))), (a, a),
                 (a, a.T),
                 (np.broadcast_to(np.arange(3.0), (2, 3)), np.ones((3, 2))),
                 (np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2))]:
        outcome, value = judge(fn, x, y)
        assert outcome == "result"
        same(value, x @ y, f"{fn.__name__} {x.shape} @ {y.shape}")


@FAST
@given(bad=st.sampled_from(NOT_ARRAYS + [np.ones((2, 3))]),
       shape=st.sampled_from([(2, 3), 5, (4, 2, 3), (3,), (-1,), "ab", (2.5,), None]))
def test_broadcast_to(bad, shape):
    """broadcast_to: NumPy's own np.broadcast_to, read-only, or a clear refusal naming t or the
    shapes."""
    outcome, value = judge(N.broadcast_to, bad, shape, names=("t ", "shape", "broadcast"))
    if outcome == "result":
        same(value, np.broadcast_to(bad, shape), "broadcast_to", exact=True)
        record_correct(not value.flags.writeable, "broadcast_to gives a read-only view")


def test_normalize():
    """normalize: mean and std are numbers or one per channel; None, strings, NaN, zero and complex
    are refused."""
    x = np.random.default_rng(4).random((2, 3, 4, 4))
    same(N.normalize(x, [0.1, 0.2, 0.3], 2.0),
         (x - np.array([0.1, 0.2, 0.3])[:, None, None]) / 2.0, "normalize")
    for name in ("mean", "std"):
        for bad in (None, "0.5", [0.1, 0.2], np.nan, 0.0, -1.0, 1j, [True, False, True], object()):
            args = dict(mean=0.5, std=0.5)
            args[name] = bad
            if name == "mean" and bad in (np.nan, 0.0, -1.0):
                continue   # any real mean is a mean (NaN propagates)
            outcome, _ = judge(N.normalize, x, args["mean"], args["std"], names=(name,))
            assert outcome == "error", (name, bad)
    for bad in NOT_ARRAYS + [x[0, 0], x.astype(np.int64), x.astype(complex)]:
        assert judge(N.normalize, bad, 0.5, 0.5, names=("x ",))[0] == "error"
    tiny = N.normalize(x.astype(np.float16), 0.5, 1e-2)   # a std that float16 can hold
    record_correct(tiny.dtype == np.float16, "normalize keeps float16")
    assert judge(N.normalize, x.astype(np.float16), 0.5, 1e-10,
                 names=("std",))[0] == "error"   # rounds to 0


@FAST
@given(bad=bad_arrays((3, 4)), which=st.sampled_from(["x", "w", "b"]))
def test_lin_relu_and_net(bad, which):
    """lin's x, w or b is bad or odd: x @ w + b by NumPy, or refused; relu refuses what is not real
    numbers."""
    rng = np.random.default_rng(5)
    args = dict(x=rng.standard_normal((3, 4)), w=rng.standard_normal((4, 2)),
                b=rng.standard_normal(2))
    args[which] = bad
    outcome, value = judge(N.lin, *args.values(), names=(f"{which} ", "lin"))
    if outcome == "result":
        same(value, args["x"] @ args["w"] + args["b"], f"lin with {which} = {bad!r:.40}")
    outcome, value = judge(N.relu, bad, names=("x ",))
    if outcome == "result": same(value, np.maximum(bad, 0), f"relu({bad!r:.40})", exact=True)


def test_relu_kinds():
    """relu: floating arrays keep their dtype; integers, bool, complex, strings and objects are
    refused by name."""
    for dtype in (np.float16, np.float32, np.float64):
        same(N.relu(np.arange(-2, 3).astype(dtype)), np.maximum(np.arange(-2, 3), 0).astype(dtype),
             str(dtype), exact=True)
    for bad in (np.arange(3), np.array([True, False]), np.array([1 + 1j]), np.array(["a"]),
                np.array([None])):
        assert judge(N.relu, bad, names=("x ",))[0] == "error"


@FAST
@given(bad=bad_arrays((5, 1)), which=st.sampled_from(["output", "targ"]))
def test_mse(bad, which):
    "mse: the mean of squared differences in float, or a refusal naming output or targ."
    args = dict(output=np.random.default_rng(6).standard_normal((5, 1)),
                targ=np.random.default_rng(7).standard_normal(5))
    args[which] = bad
    outcome, value = judge(N.mse, *args.values(), names=(which,))
    if outcome == "result":
        o, t = (np.asarray(v, dtype=np.float64).reshape(-1) for v in args.values())
        record_correct(np.isclose(float(value), np.mean((o - t) ** 2), rtol=1e-3, equal_nan=True),
                       f"mse {which}")


def test_init():
    "xavier_init / kaiming_init: sizes by check_int, a numpy Generator or None, a floating dtype."
    for fn in (N.xavier_init, N.kaiming_init):
        for bad in NOT_INTS + BAD_INTS:
            assert judge(fn, bad, 3, names=("n_in",))[0] == "error"
            assert judge(fn, 3, bad, names=("n_out",))[0] == "error"
        for bad in (42, "seed", np.random.RandomState(0)):
            assert judge(fn, 3, 2, bad, names=("rng",))[0] == "error"
        for bad in (np.int32, "int64", bool, complex):
            assert judge(fn, 3, 2, dtype=bad, names=("dtype",))[0] == "error"
        w = fn(np.int64(400), 300, np.random.default_rng(0), dtype=np.float32)
        scale = 1 / 20 if fn is N.xavier_init else np.sqrt(2 / 400)
        record_correct(w.dtype == np.float32 and w.shape == (400, 300)
                       and abs(w.std() / scale - 1) < 0.02, fn.__name__)


def test_activation_stds():
    """activation_stds: the batch, the layer count, the scale and the generator are each checked by
    name."""
    x = np.random.default_rng(8).standard_normal((16, 8))
    for bad in NOT_ARRAYS + [x[0], x.astype(np.int64), x.astype(complex)]:
        assert judge(N.activation_stds, bad, 3, 1.0, names=("x ",))[0] == "error"
    for bad in NOT_INTS + BAD_INTS:
        assert judge(N.activation_stds, x, bad, 1.0, names=("n_layers",))[0] == "error"
    for bad in NOT_NUMBERS + BAD_NUMBERS:
        assert judge(N.activation_stds, x, 3, bad, names=("scale",))[0] == "error"
    stds = N.activation_stds(x, 3, 1.0, rng=np.random.default_rng(0))
    g, y, expected = np.random.default_rng(0), x, []
    for _ in range(3):
        y = y @ g.standard_normal((8, 8))
        expected.append(y.std(ddof=1))
    same(stds, expected, "activation_stds replayed")


def test_grad_arrays_and_add_grad():
    """Where a gradient lives: a plain ndarray is refused with what to do; shapes and dtypes must
    fit."""
    assert judge(N.add_grad, np.ones(2), np.ones(2), names=("GradArray",))[0] == "error"
    t = GradArray(np.ones(3))
    assert judge(N.add_grad, t, np.ones(2), names=("shape",))[0] == "error"
    assert judge(N.add_grad, t, np.ones(3, np.float32), names=("dtype",))[0] == "error"
    N.add_grad(t, np.ones(3)); N.add_grad(t, GradArray(np.ones(3)))
    record_correct(type(t.g) is np.ndarray and np.array_equal(t.g, [2.0, 2.0, 2.0]),
                   "add_grad adds, as a plain array")
    record_correct(GradArray([1, 2]).g is None and np.shares_memory(GradArray(t), t),
                   "GradArray is a view")


def test_gradient_functions():
    """mse_grad, relu_grad, lin_grad: the formulas on good input; clear refusals of bad input and
    aliasing."""
    rng = np.random.default_rng(9)
    inp, w, b = (GradArray(rng.standard_normal(s)) for s in ((4, 3), (3, 2), (2,)))
    out = N.lin(inp, w, b)
    assert judge(N.lin_grad, inp, out, w, b,
                 names=("out.g",))[0] == "error"        # no upstream gradient yet
    out.g = rng.standard_normal((4, 2))
    N.lin_grad(inp, out, w, b)
    same(inp.g, out.g @ np.asarray(w).T, "lin_grad inp.g")
    same(w.g, np.asarray(inp).T @ out.g, "lin_grad w.g")
    same(b.g, out.g.sum(0), "lin_grad b.g")
    for bad, name in ((np.ones((3, 2)), "inp"), (GradArray(np.ones((4, 2))), "inp")):
        assert judge(N.lin_grad, bad, out, w, b, names=(name, "n_in"))[0] == "error"
    assert judge(N.lin_grad, GradArray(np.empty((0, 3))), GradArray(np.empty((0, 2))), w, b,
                 names=("out.g",))[0] == "error"
    empty_out = N.lin(GradArray(np.empty((0, 3))), w,
                      b)                  # an empty batch: empty gradients
    empty_out.g = np.empty((0, 2)); w.g = b.g = None
    empty_inp = GradArray(np.empty((0, 3)))
    assert judge(N.lin_grad, empty_inp, empty_out, w,
                 b)[0] == "result" and np.array_equal(w.g, np.zeros((3, 2)))
    # relu_grad(x, x) after an in-place ReLU: refused (it used to double x.g)
    x = GradArray(np.array([-1.0, 2.0]))
    np.maximum(x, 0, out=x)
    x.g = np.array([1.0, 1.0])
    assert judge(N.relu_grad, x, x, names=("out is the same array as inp",))[0] == "error"
    record_correct(np.array_equal(x.g, [1.0, 1.0]), "relu_grad left x.g alone")
    r_in = GradArray(np.array([-1.0, 0.0,
                               2.0])); r_out = N.relu(r_in); r_out.g = np.array([5.0, 5.0, 5.0])
    N.relu_grad(r_in, r_out)
    same(r_in.g, [0.0, 0.0, 5.0], "relu_grad at the kink and on either side", exact=True)
    assert judge(N.relu_grad, r_in, N.relu(GradArray(np.ones(2))),
                 names=("inp", "out"))[0] == "error"
    p, t = GradArray(np.array([[1.0], [3.0]])), np.array([0.0, 1.0])
    N.mse_grad(p, t)
    same(p.g, [[1.0], [2.0]], "mse_grad")
    for bad in (np.array([1, 2]), np.array([1 + 1j, 2]), np.ones(3), None):
        assert judge(N.mse_grad, GradArray(np.ones(2)), bad, names=("targ",))[0] == "error"


def test_forward_and_backward_and_model():
    "The backward pass refuses plain arrays and aliased parameters, and matches finite differences."
    rng = np.random.default_rng(10)
    xs, ys = rng.standard_normal((5, 3)), rng.standard_normal(5)
    params = [rng.standard_normal(s) for s in ((3, 4), (4,), (4, 1), (1,))]
    assert judge(N.forward_and_backward, xs, ys, *map(GradArray, params),
                 names=("inp",))[0] == "error"
    w1 = GradArray(params[0])
    assert judge(N.forward_and_backward, GradArray(xs), ys, w1, GradArray(w1[0]),
                 *map(GradArray, params[2:]),
                 names=("w1 and b1",))[0] == "error"                             # b1 a view of w1
    col = GradArray(rng.standard_normal((5, 1)))
    assert judge(N.forward_and_backward, col, col.reshape(5),
                 *map(GradArray, [rng.standard_normal((1, 4)), *params[1:]]),
                 names=("targ",
                        # input reused as the target
                        ))[0] == "error"
    wrapped = [GradArray(p.copy()) for p in params]
    inp = GradArray(xs.copy())
    N.forward_and_backward(inp, ys, *wrapped)
    def loss(): return N.mse(N.two_layer_net(inp, *wrapped), ys)
    for a in (inp, *wrapped):
        numeric = N.numerical_grad(loss, a)
        record_correct(np.allclose(a.g, numeric, atol=1e-6),
                       "forward_and_backward against finite differences")
    model = N.Model(*(GradArray(p.copy()) for p in params))
    assert judge(model, xs, ys, names=("x",))[0] == "error"
    for bad in NOT_ARRAYS:
        assert judge(N.Lin, bad, GradArray(np.ones(2)), names=("w",))[0] == "error"
    assert judge(N.Lin, GradArray(np.ones((2, 3))), GradArray(np.ones(2)),
                 names=("n_out",))[0] == "error"


def test_numerical_grad():
    """numerical_grad: refuses read-only, overlapping, low-precision and non-array x, bad eps,
    non-scalar f."""
    a = np.linspace(-1, 1, 6).reshape(2, 3)
    record_correct(np.allclose(N.numerical_grad(lambda: (a ** 3).sum(), a), 3 * a ** 2, atol=1e-8),
                   "numerical_grad of a cube")
    ro = np.asarray(np.broadcast_to(np.ones(3), (2, 3)))
    overlapping = np.lib.stride_tricks.as_strided(np.arange(4.0), (3, 2),
                                                  (8, 8))   # writable, overlapping
    for x, name in ((ro, "read-only"), (overlapping, "overlap"), (a.astype(np.float32), "float64"),
                    ([1.0], "x "), (a.astype(complex), "float64")):
        assert judge(N.numerical_grad, lambda: 0.0, x, names=(name,))[0] == "error", name
    for eps in NOT_NUMBERS + BAD_NUMBERS + [0.0, -1e-6]:
        assert judge(N.numerical_grad, lambda: a.sum(), a, eps, names=("eps",))[0] == "error"
    assert judge(N.numerical_grad, lambda: a.sum(), np.array([1e11]),
                 names=("eps",))[0] == "error"   # step lost
    assert judge(N.numerical_grad, lambda: a, a, names=("scalar",))[0] == "error"
    assert judge(N.numerical_grad, lambda: "x", a, names=("f()",))[0] == "error"
    assert judge(N.numerical_grad, lambda: a.sum(), np.array([1.0, np.inf]),
                 names=("inf",))[0] == "error"
    assert judge(N.numerical_grad, 3, a, names=("f ",))[0] == "error"


def test_imported_not_twinned():
    "What the module imports, it does not copy: and it never calls PyTorch itself."
    import inspect, foundations.broadcasting as ch2, foundations.modules as ch5
    assert N.broadcast_shapes is ch2.broadcast_shapes and N.LayerFunction is ch5.LayerFunction
    assert "torch" not in inspect.getsource(N).replace("# AUTOGENERATED", "")


def test_model_is_chapter_5s_with_numpy_layers():
    """The NumPy Model inherits chapter 5's checks (one layer twice, targ is x) and names a torch
    input as such."""
    import torch, foundations.modules as M
    rng = np.random.default_rng(0)
    params = [GradArray(rng.standard_normal(s)) for s in ((3, 4), (4,), (4, 1), (1,))]
    model = N.Model(*params)
    assert isinstance(model, M.Model)
    x = GradArray(rng.standard_normal((5, 3)))
    outcome, e = judge(model, torch.ones(5, 3), np.ones(5), names=("x",))
    assert outcome == "error" and "numpy.ndarray" in str(e)
    col = GradArray(rng.standard_normal((5, 1)))
    assert judge(N.Model(GradArray(rng.standard_normal((1, 4))), *params[1:]), col, col,
                 names=("targ",))[0] == "error"
    model.layers[1] = model.layers[0]
    assert judge(model, x, np.ones(5), names=("layers",))[0] == "error"


# ---- issue 27: a PyTorch dtype, an empty batch, a width-changing nonlinearity, byte orders -------
def test_xavier_and_kaiming_with_a_dtype_numpy_does_not_know():
    "A torch dtype (or a made-up name) is refused by name, not by NumPy's own TypeError."
    torch = pytest.importorskip("torch")
    for init in (N.xavier_init, N.kaiming_init):
        for bad in (torch.float32, "float-ish"):
            outcome, e = judge(init, 3, 4, dtype=bad, names=("dtype",))
            assert outcome == "error" and isinstance(e, TypeError)


def test_activation_stds_on_an_empty_or_single_batch():
    "No spread to measure in fewer than two activations: the torch edition's ValueError."
    for shape in ((0, 3), (1, 1), (2, 0, 3)):
        outcome, e = judge(N.activation_stds, np.zeros(shape), 2, 1.0, names=("x has shape",))
        assert outcome == "error" and isinstance(e, ValueError)


def test_activation_stds_with_a_nonlinearity_that_changes_the_width():
    "A nonlinearity must keep the shape: a clear ValueError, as in chapter 3."
    x = np.random.default_rng(0).standard_normal((8, 4))
    for bad in (lambda a: a[:, :2], lambda a: float(a.sum())):
        outcome, e = judge(N.activation_stds, x, 3, 1.0, nonlinearity=bad, names=("nonlinearity",))
        assert outcome == "error" and isinstance(e, ValueError)


def test_numerical_grad_on_a_big_endian_array():
    "float64 in either byte order is float64: the right derivative, and x comes back unchanged."
    x = np.linspace(-1, 1, 5).astype(">f8")
    before = x.copy()
    outcome, value = judge(N.numerical_grad, lambda: float((x ** 3).sum()), x)
    record_correct(outcome == "result" and np.allclose(value, 3 * x.astype(float) ** 2, atol=1e-6)
                   and np.array_equal(x, before), "numerical_grad on big-endian float64")


def test_chapter_8_table_names_every_twin():
    "Every name defined both here and in a PyTorch module (private helpers too) is in the table."
    import ast, json
    from helpers import ROOT as root

    def defined(module):
        tree = ast.parse((root / "foundations" / f"{module}.py").read_text())
        names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        return names | {t.id for n in tree.body if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Name) and t.id != "__all__"}
    ours = defined("numpy_edition")
    twins = set().union(*(ours & defined(m) for m in
                          ("core", "matmul", "broadcasting", "init", "backprop", "modules")))
    cells = json.loads((root / "nbs" / "08_numpy_edition.ipynb").read_text())["cells"]
    table = next("".join(c["source"]) for c in cells
                 if c["cell_type"] == "markdown"
                 and "| twinned for NumPy |" in "".join(c["source"]))
    missing = sorted(name for name in twins if f"`{name}`" not in table)
    record_correct(not missing, f"chapter 8's table of twins lacks {missing}")
