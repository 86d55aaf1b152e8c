"""Adversarial inputs for `foundations.core` (issue 15): the shared argument checks and the `.g`
protocol.

A checker must either return what it promises (the tensor, the sizes, the int, the float) or raise a
TypeError/ValueError from the library that names the argument; the protocol must add, clear and read
gradients exactly, or refuse. Run: `pytest tests/library/test_adversarial_core.py`.
"""
import math, warnings
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, odd_tensors, NOT_TENSORS, NOT_INTS,
                         BAD_INTS, NOT_NUMBERS, BAD_NUMBERS)
import foundations.core as C

# odd_tensors((3,)) transposes a vector: deprecated in torch, harmless here
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    ODD_VECTORS = odd_tensors((3,))
FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(C.__all__) == {
        "check_tensor", "check_shapes", "match_shapes", "check_int", "check_number", "check_device",
        "check_column_or_vector", "add_grad", "zero_grads", "upstream_grad", "FLOAT_DTYPES",
        "CLASS_DTYPES", "check_class_targets", "DtypeArg", "DeviceArg", "GeneratorArg"}


# ---- check_tensor
# ---------------------------------------------------------------------------------------
@FAST
@given(value=st.sampled_from(NOT_TENSORS + odd_tensors()),
       ndim=st.sampled_from([None, 0, 1, 2, (1, 2)]),
       floating=st.booleans())
def test_check_tensor(value, ndim, floating):
    """Returns the very tensor when it fits; otherwise TypeError (kind, dtype) or ValueError (rank)
    naming it."""
    outcome, result = judge(C.check_tensor, value, "arg", ndim=ndim, floating=floating,
                            names=("arg",))
    fits = (isinstance(value, torch.Tensor) and (not floating or value.dtype in C.FLOAT_DTYPES)
            and (ndim is None or value.ndim in ((ndim,) if isinstance(ndim, int) else ndim)))
    record_correct((outcome == "result") == fits,
                   f"check_tensor({value!r:.40}, ndim={ndim}, floating={floating})")
    if outcome == "result": assert result is value
    elif not isinstance(value, torch.Tensor) or (floating and not value.is_floating_point()):
        assert isinstance(result, TypeError)
    else: assert isinstance(result, ValueError)


# ---- check_shapes
# ---------------------------------------------------------------------------------------
@FAST
@given(x=st.sampled_from(NOT_TENSORS + odd_tensors((3, 4))), which=st.sampled_from(["x", "w"]))
def test_check_shapes_one_odd_tensor(x, which):
    """lin's patterns with one odd argument: the sizes when everything binds, else an error naming
    the culprit."""
    args = {"x": (torch.randn(2, 4), "... n_in"), "w": (torch.randn(4, 3), "n_in n_out"),
            "b": (torch.randn(3), "n_out")}
    args[which] = (x, args[which][1])
    outcome, result = judge(C.check_shapes, "lin", names=(which,), **args)
    if outcome == "result":
        xs, ws = args["x"][0], args["w"][0]
        record_correct(result == {"n_in": ws.shape[0],
                                  "n_out": ws.shape[1]} and xs.shape[-1] == ws.shape[0]
                       and xs.dtype == ws.dtype and xs.device == ws.device,
                       f"check_shapes with {which} = {x!r:.40}")


def test_check_shapes_messages():
    x, w = torch.randn(5, 4), torch.randn(3, 4)
    outcome, e = judge(C.check_shapes, "lin", names=("w",), x=(x, "... n_in"), w=(w, "n_in n_out"))
    assert outcome == "error" and "got x (5, 4), w (3, 4)" in str(e) and "try w.T" in str(e)
    outcome, e = judge(C.check_shapes, "f", names=("a",), a=(torch.randn(2, 3), "n 3"),
                       b=(torch.randn(2), "n"))
    assert outcome == "result" and e == {"n": 2}
    outcome, e = judge(C.check_shapes, "f", names=("a",), a=(torch.randn(2, 4), "n 3"))
    assert outcome == "error" and "size 3" in str(e)
    outcome, e = judge(C.check_shapes, "f", names=("a", "b"), same_dtype=False,
                       a=(torch.randn(2), "n"), b=(torch.randn(2, dtype=torch.float64), "n"))
    assert outcome == "result"
    outcome, e = judge(C.check_shapes, "f", names=("a", "b"), a=(torch.randn(2), "n"),
                       b=(torch.randn(2, device="meta"), "n"))
    assert outcome == "error" and "meta" in str(e)


# ---- match_shapes: check_shapes without the tensors, for any array library
# ---------------------------------
NOT_PAIRS = [3, None, "n k", ((2, 3),), ((2, 3), "n k", "x"), ([2, 3], "n k"), ((2, 3), 3),
             ((2, 3), None),
             ((2, 3), ["n", "k"]), [(2, 3), "n k"], (torch.randn(2, 3), "n k"),
             (np.ones((2, 3)), "n k")]

@FAST
@given(a=st.sampled_from(NOT_PAIRS + [((2, 3), "n k"), (torch.Size([2, 3]), "n k"),
                                      (np.ones((2, 3)).shape, "... k"),
                                     ((4, 3), "n k"), ((2,), "n k"), ((2, 5), "n 3"), ((), ""),
                                     ((-1, 3), "n k"), ((np.int64(2), 3), "n k"),
                                      ((True, 3), "n k"), (("a", 3), "n k"),
                                     ((2, 3), "n ... k"), ((2, 3), "n -1"), ((2, 3), "n 3.0"),
                                      ((2, 3), "n \u00b2")]))
def test_match_shapes(a):
    """Sizes when the shapes fit (k shared with b's (3,)); else TypeError for a non-pair, ValueError
    naming a."""
    outcome, result = judge(C.match_shapes, "f", a=a, b=((3,), "k"), names=("a",))
    if outcome == "result":
        shape, pattern = a
        expect = {"k": 3} | ({"n": shape[0]} if pattern.startswith("n") else {})
        if pattern.startswith("n"): fits = len(shape) == 2 and shape[-1] == 3
        else: fits = shape[-1:] in ((3,), ())
        record_correct(result == expect and fits, f"match_shapes(a={a!r:.40})")
    else:
        fits_kind = (isinstance(a, tuple) and len(a) == 2
                     and isinstance(a[0], tuple)
                     and isinstance(a[1], str)
                     and all(type(s) is int and s >= 0 for s in a[0]))
        assert isinstance(result, ValueError if fits_kind else TypeError)


def test_shape_checks_refuse_malformed_arguments_anywhere():
    """A malformed argument after a mismatched one, or a pattern left out: a TypeError naming it,
    never a crash."""
    x = torch.randn(2, 3)
    for bad in (((3,), 7), 5, ((3,), "n", 1)):
        assert judge(C.match_shapes, "f", x=((2, 3), "n"), y=bad, names=("y",))[0] == "error"
    for bad in (x, (x,), (x, "n k", 1), torch.tensor(1.0)):
        outcome, e = judge(C.check_shapes, "f", x=bad, names=("x",))
        assert outcome == "error" and isinstance(e, TypeError)


def test_match_shapes_is_check_shapes_without_tensors():
    "The same sizes and the same message as check_shapes, from shapes alone."
    x, w = torch.randn(5, 4), torch.randn(3, 4)
    _, from_tensors = judge(C.check_shapes, "lin", names=("w",), x=(x, "... n_in"),
                            w=(w, "n_in n_out"))
    _, from_shapes = judge(C.match_shapes, "lin", names=("w",), x=(x.shape, "... n_in"),
                           w=(tuple(w.shape), "n_in n_out"))
    assert str(from_tensors) == str(from_shapes) and "try w.T" in str(from_shapes)
    outcome, sizes = judge(C.match_shapes, "f", a=((2, 3, 4), "... n k"), b=((4,), "k"),
                           c=((3, 4), "n 4"))
    assert outcome == "result" and sizes == {"n": 3, "k": 4}


def test_gradient_protocol_refuses_mixed_libraries_and_stale_gradients():
    "A NumPy gradient for a tensor, a stale .g of another dtype or library: refused, t.g untouched."
    t = torch.zeros(3)
    outcome, e = judge(C.add_grad, t, np.zeros(3, np.float32), names=("g",))
    assert outcome == "error" and isinstance(e, TypeError) and getattr(t, "g", None) is None
    for stale in (torch.ones(3, dtype=torch.float64), np.ones(3, np.float32), torch.ones(2),
                  [0.0] * 3):
        t.g = stale
        assert judge(C.add_grad, t, torch.ones(3), names=(".g",))[0] == "error" and t.g is stale
    out = torch.zeros(3); out.g = np.zeros(3, np.float32)
    assert judge(C.upstream_grad, out, "f", names=("out.g",))[0] == "error"


def test_zero_grads_clears_all_or_none():
    a, b = torch.ones(2), torch.ones(2)
    a.g, b.g = torch.ones(2), torch.ones(2)
    for bad in (np.zeros(3), None, 3, [a]):
        outcome, e = judge(C.zero_grads, a, bad, b, names=("argument 1",))
        assert outcome == "error" and isinstance(e,
                                                 TypeError) and a.g is not None and b.g is not None
    C.zero_grads(a, b)
    record_correct(a.g is None and b.g is None, "zero_grads clears every .g")


# ---- check_int and check_number
# -------------------------------------------------------------------------
@FAST
@given(value=st.sampled_from(NOT_INTS + BAD_INTS + [1, 7, np.int64(3), np.uint8(2),
                                                    torch.tensor(4), 2 ** 70]),
       minimum=st.sampled_from([0, 1, 5]))
def test_check_int(value, minimum):
    outcome, result = judge(C.check_int, value, "n", minimum, names=("n",))
    not_a_number = isinstance(value, (bool, float, str, list, type(None)))
    not_an_int = isinstance(value, (np.floating, torch.Tensor)) and (
        not isinstance(value, torch.Tensor) or value.numel() != 1 or value.is_floating_point())
    integral = not not_a_number and not not_an_int
    if outcome == "result":
        record_correct(type(result) is int and result == int(value) and result >= minimum,
                       f"check_int({value!r})")
    else:
        record_correct(not integral or int(value) < minimum, f"check_int refused {value!r}")


@FAST
@given(value=st.sampled_from(NOT_NUMBERS + BAD_NUMBERS
                             + [0.0, -2.5, 3, np.float32(0.5), np.int64(2), 1e308]),
       positive=st.booleans(), finite=st.booleans())
def test_check_number(value, positive, finite):
    outcome, result = judge(C.check_number, value, "x", positive=positive, finite=finite,
                            names=("x",))
    if outcome == "result":
        ok = type(result) is float and (result == float(value) or math.isnan(result))
        ok = ok and (not finite or math.isfinite(result)) and (not positive or result > 0)
        record_correct(ok, f"check_number({value!r}, positive={positive}, finite={finite})")


# ---- check_device
# ---------------------------------------------------------------------------------------
NOT_DEVICES = NOT_TENSORS + [True, 0, torch.ones(1), b"cpu"]
BAD_DEVICES = ["", "nowhere", "cpu:x", "cuda:-1", "gpu", "mps",
               "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"])


@FAST
@given(value=st.sampled_from(NOT_DEVICES + BAD_DEVICES
                             + ["cpu", "meta", torch.device("cpu"), torch.device("meta")]))
def test_check_device(value):
    """Returns a torch.device for a device this machine has; TypeError (kind) or ValueError (name)
    naming it."""
    outcome, result = judge(C.check_device, value, "where", names=("where",))
    good = isinstance(value, (str, torch.device)) and str(value) in ("cpu", "meta")
    record_correct((outcome == "result") == good, f"check_device({value!r:.40})")
    if outcome == "result": assert type(result) is torch.device and result == torch.device(value)
    elif not isinstance(value, (str, torch.device)): assert isinstance(result, TypeError)
    else: assert isinstance(result, ValueError)


# ---- check_column_or_vector
# -----------------------------------------------------------------------------
@FAST
@given(bad=st.sampled_from(NOT_TENSORS + odd_tensors((3, 1)) + ODD_VECTORS),
       which=st.sampled_from(["output", "targ"]))
def test_check_column_or_vector(bad, which):
    args = {"output": torch.randn(3, 1), "targ": torch.randn(3)}
    args[which] = bad
    outcome, result = judge(C.check_column_or_vector, "mse", names=(which,), **args)
    if outcome == "result":
        t = args[which]
        record_correct(result == 3 and t.is_floating_point() and t.numel() == 3
                       and t.device.type == "cpu",
                       f"check_column_or_vector with {which} = {bad!r:.40}")


# ---- the .g protocol
# ------------------------------------------------------------------------------------
@FAST
@given(g=st.sampled_from(NOT_TENSORS + odd_tensors((3, 4))))
def test_add_grad_odd_gradients(g):
    """Only a gradient of the tensor's own shape, dtype and device is added; anything else is
    refused."""
    t = torch.zeros(3, 4)
    outcome, result = judge(C.add_grad, t, g, names=("g", "gradient"))
    if outcome == "result":
        record_correct(g.shape == t.shape and g.dtype == t.dtype
                       and torch.allclose(t.g, g, equal_nan=True), f"add_grad of {g!r:.40}")


def test_add_grad_accumulates_and_refuses_stale():
    t = torch.zeros(2, 2)
    C.add_grad(t, torch.ones(2, 2)); C.add_grad(t, torch.full((2, 2), 2.0))
    record_correct(torch.equal(t.g, torch.full((2, 2), 3.0)), "two contributions add")
    # stale, from a tensor of another shape
    t.g = torch.ones(3)
    assert judge(C.add_grad, t, torch.ones(2, 2), names=(".g",))[0] == "error"
    t.g = "not a gradient"
    assert judge(C.add_grad, t, torch.ones(2, 2), names=(".g",))[0] == "error"
    assert judge(C.add_grad, [0.0], torch.ones(1), names=("t",))[0] == "error"
    C.zero_grads(t)
    assert t.g is None


def test_upstream_grad():
    out = torch.zeros(2, 3)
    assert judge(C.upstream_grad, out, "relu_grad",
                 names=("out.g",))[0] == "error"   # nothing stored yet
    for g in (torch.ones(3, 2), torch.ones(2, 3, dtype=torch.float64),
              torch.ones(2, 3, device="meta"), [1.0]):
        out.g = g
        outcome, e = judge(C.upstream_grad, out, "relu_grad", names=("out.g",))
        assert outcome == "error", g
    out.g = torch.ones(2, 3)
    assert C.upstream_grad(out, "relu_grad") is out.g
    assert judge(C.upstream_grad, None, "relu_grad", names=("out",))[0] == "error"


# ---- issue 27: float8 and sparse tensors, and the one home of the class-target checks
# -------------
FLOAT8 = [getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)]


@pytest.mark.parametrize("dtype", FLOAT8)
def test_float8_is_refused_with_the_fix(dtype):
    "PyTorch stores float8 but can hardly compute with it: refused by name, with .float()."
    t = torch.zeros(2, 3).to(dtype)
    for call in (lambda: C.check_tensor(t, "x", floating=True),
                 lambda: C.check_shapes("f", floating=True, x=(t, "n k"))):
        outcome, e = judge(call, names=("x",))
        assert outcome == "error" and isinstance(e, TypeError) and "x.float()" in str(e)


def test_sparse_tensors_are_refused_with_the_fix():
    "A sparse layout is the wrong kind of tensor for every check: TypeError with .to_dense()."
    t = torch.eye(3).to_sparse()
    for call in (lambda: C.check_tensor(t, "x"), lambda: C.check_shapes("f", x=(t, "n k")),
                 lambda: C.check_column_or_vector("f", x=torch.ones(3).to_sparse())):
        outcome, e = judge(call, names=("x",))
        assert outcome == "error" and isinstance(e, TypeError) and "x.to_dense()" in str(e)


def test_int_inputs_say_how_to_convert():
    "The book refuses integer activations; the message says how to convert them."
    outcome, e = judge(C.check_tensor, torch.ones(2, dtype=torch.int64), "x", floating=True)
    assert outcome == "error" and str(e).endswith("convert it with x.float()")
    outcome, e = judge(C.check_tensor, torch.ones(2, dtype=torch.complex64), "x", floating=True)
    assert outcome == "error" and ".float()" not in str(e)   # dropping a complex part is no fix


@pytest.mark.parametrize("dtype", C.CLASS_DTYPES)
def test_check_class_targets_takes_every_integer_dtype(dtype):
    "Class indices in any integer dtype, uint16 and uint64 included: checked, and n returned."
    logits, targets = torch.randn(4, 3), torch.tensor([0, 2, 1, 2]).to(dtype)
    record_correct(judge(C.check_class_targets, logits, targets) == ("result", 4), f"{dtype}")
    bad = torch.tensor([0, 3, 1, 2]).to(dtype)
    outcome, e = judge(C.check_class_targets, logits, bad, names=("targets hold classes 0 to 3",))
    assert outcome == "error" and isinstance(e, ValueError)


def test_check_class_targets_refuses_what_is_no_class():
    "Floats, bools, wrong shapes, two devices, no rows or no classes: each named."
    logits, targets = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    cases = [((logits, targets.float()), TypeError, "targets.long()"),
             ((logits, targets.bool()), TypeError, "targets.long()"),
             ((logits.long(), targets), TypeError, "logits"),
             ((logits, [0, 2, 1, 2]), TypeError, "targets"),
             ((logits, targets[:3]), ValueError, "targets (3,)"),
             ((logits[0], targets), ValueError, "logits (n, n_classes)"),
             ((logits, targets.to("meta")), ValueError, "one device"),
             ((logits[:0], targets[:0]), ValueError, "empty batch"),
             ((logits[:, :0], targets), ValueError, "at least one class"),
             ((logits, targets - 1), ValueError, "classes -1 to 1")]
    for args, kind, words in cases:
        outcome, e = judge(lambda: C.check_class_targets(*args, fn="loss"), names=(words,))
        assert outcome == "error" and isinstance(e, kind), (words, e)
    meta = (logits.to("meta"), targets.to("meta"))
    record_correct(judge(C.check_class_targets, *meta) == ("result", 4), "meta tensors")
