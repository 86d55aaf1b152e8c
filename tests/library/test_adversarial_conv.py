"""Adversarial inputs for `foundations.conv` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches `torch.nn.functional` (the
independent reference), or raise a TypeError/ValueError from the library that names the argument.
Run: `pytest tests/library/test_adversarial_conv.py`.
"""
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers.adversarial import judge, record_correct, bad_inputs, NOT_INTS, BAD_INTS
import foundations.conv as C

FAST = settings(max_examples=25, derandomize=True, deadline=None, database=None)


def test_every_public_name_is_covered():
    assert set(C.__all__) == {"unfold_loops", "conv2d_unfold", "Conv2dUnfold", "DigitsCNN"}


def images(n=2, c=3, h=5, w=5, dtype=torch.float64):
    return torch.randn(n, c, h, w, dtype=dtype, generator=torch.Generator().manual_seed(0))


def check_close(result, expected, what, tol=1e-10):
    """Same shape, dtype and device as the reference, and the same values up to rounding (NaN where
    it has NaN)."""
    record_correct(result.shape == expected.shape and result.dtype == expected.dtype
                   and result.device == expected.device, f"{what}: shape, dtype or device")
    if expected.device.type != "meta":
        record_correct(torch.allclose(result, expected, atol=tol, rtol=tol, equal_nan=True),
                       f"{what}: values")


@FAST
@given(bad=bad_inputs("tensor"))
def test_bad_or_odd_images(bad):
    """x is a bad value or an odd tensor: unfold_loops and conv2d_unfold agree with F.unfold /
    F.conv2d or refuse."""
    outcome, value = judge(C.unfold_loops, bad, 1, names=("x ",))
    if outcome == "result": check_close(value, F.unfold(bad, 1), f"unfold_loops({bad!r:.50})")
    c_in = getattr(bad, "shape", (1, 1))[1] if getattr(bad, "ndim", 0) == 4 else 3
    weight = torch.randn(2, c_in, 1, 1)
    outcome, value = judge(C.conv2d_unfold, bad, weight, names=("x ", "x,", "x must"))
    if outcome == "result":
        check_close(value, F.conv2d(bad, weight.to(bad)), f"conv2d_unfold({bad!r:.50})")


@FAST
@given(bad=bad_inputs("tensor"), which=st.sampled_from(["weight", "bias"]))
def test_bad_or_odd_weight_and_bias(bad, which):
    """weight or bias is a bad value or an odd tensor of another kind: a clear error naming it, or
    F.conv2d's answer."""
    x, weight = images(), torch.randn(4, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    args = dict(weight=weight, bias=bias)
    args[which] = bad
    outcome, value = judge(C.conv2d_unfold, x, args["weight"], args["bias"], names=(which,))
    if outcome == "result":
        check_close(value, F.conv2d(x, args["weight"], args["bias"]), f"{which} = {bad!r:.50}")


@FAST
@given(bad=st.sampled_from(NOT_INTS + BAD_INTS + [(1, 2, 3), (1,), (1, None), "ab", (2.0, 2)]),
       which=st.sampled_from(["kernel_size", "stride", "padding"]))
def test_bad_geometry(bad, which):
    "kernel_size, stride and padding: ints or pairs of ints, each at least 1 (padding at least 0)."
    args = dict(kernel_size=2, stride=1, padding=0)
    args[which] = bad
    if which == "padding" and type(bad) is int and bad == 0: return   # a valid padding
    outcome, _ = judge(C.unfold_loops, images(), args["kernel_size"], args["stride"],
                       args["padding"], names=(which,))
    assert outcome == "error"


def test_edge_shapes_and_views():
    """Empty batches, 1x1 images, kernels as large as the padded image, transposed and expanded
    views, 0 kernels."""
    x = images()
    cases = [(torch.empty(0, 3, 5, 5, dtype=torch.float64),
              torch.randn(2, 3, 3, 3, dtype=torch.float64), {}),
             (images(1, 1, 1, 1), torch.randn(2, 1, 1, 1, dtype=torch.float64), {}),
             (images(1, 1, 2, 2), torch.randn(1, 1, 4, 4, dtype=torch.float64), dict(padding=1)),
             (x.transpose(2, 3), torch.randn(3, 3, 2, 3, dtype=torch.float64).transpose(2, 3),
              dict(stride=(2, 1))),
             (torch.randn(1, 3, 1, 5, dtype=torch.float64).expand(2, 3, 5, 5),
              torch.randn(1, 3, 3, 3, dtype=torch.float64), {})]
    for xs, weight, kw in cases:
        outcome, value = judge(C.conv2d_unfold, xs, weight, **kw)
        assert outcome == "result"
        check_close(value, F.conv2d(xs, weight, **kw), f"conv2d_unfold on {tuple(xs.shape)}")
        check_close(C.unfold_loops(xs, tuple(weight.shape[2:]), **kw),
                    F.unfold(xs, tuple(weight.shape[2:]), **kw),
                    f"unfold_loops on {tuple(xs.shape)}")
    # no kernels at all: F.conv2d refuses, the unfold recipe gives the empty answer
    outcome, value = judge(C.conv2d_unfold, x, torch.empty(0, 3, 3, 3, dtype=torch.float64))
    assert outcome == "result" and value.shape == (2, 0, 3, 3)
    for bad in (torch.empty(2, 0, 5, 5),
                torch.empty(2, 3, 0, 5)):   # nothing to convolve: refused, naming x
        assert judge(C.unfold_loops, bad, 1, names=("x ",))[0] == "error"


def test_sparse_layouts():
    "Sparse images or kernels have no patches to unfold: refused by name, with the fix."
    x, w = images(1, 2, 4, 4), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    for args, name in (((x.to_sparse(), w), "x "), ((x, w.to_sparse()), "weight "),
                       ((x, w, torch.zeros(3, dtype=torch.float64).to_sparse()), "bias ")):
        assert judge(C.conv2d_unfold, *args, names=(name,))[0] == "error"
    assert judge(C.unfold_loops, x.to_sparse(), 2, names=("x ",))[0] == "error"


def test_nan_inf_and_aliasing():
    "NaN and inf flow through as F.conv2d's do; x and weight may be one tensor."
    x = images(1, 2, 4, 4)
    x[0, 0, 1, 1], x[0, 1, 2, 2] = float("nan"), float("inf")
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    check_close(C.conv2d_unfold(x, w), F.conv2d(x, w), "NaN and inf")
    same = torch.randn(2, 2, 2, 2, dtype=torch.float64)
    check_close(C.conv2d_unfold(same, same), F.conv2d(same, same), "x is weight")


def test_devices_and_huge_sizes():
    """A mix of devices is refused by name; a padding that would need more memory than the machine
    is refused first."""
    x, w = images(), torch.randn(2, 3, 3, 3, dtype=torch.float64)
    outcome, e = judge(C.conv2d_unfold, x, w.to("meta"), names=("device",))
    assert outcome == "error"
    for fn, args in ((C.conv2d_unfold, (x, w)), (C.unfold_loops, (x, 3))):
        outcome, e = judge(fn, *args, padding=10 ** 6, names=("GB",))
        assert outcome == "error" and "padding" in str(e)


def test_layers():
    """Conv2dUnfold and DigitsCNN: sizes and channels checked by name; the layers compute F.conv2d's
    answer."""
    for bad in NOT_INTS + BAD_INTS:
        assert judge(C.Conv2dUnfold, bad, 2, 3, names=("in_channels",))[0] == "error"
        assert judge(C.Conv2dUnfold, 2, bad, 3, names=("out_channels",))[0] == "error"
        assert judge(C.Conv2dUnfold, 2, 2, bad, names=("kernel_size",))[0] == "error"
        assert judge(C.DigitsCNN, bad, names=("n_classes",))[0] == "error"
        assert judge(C.DigitsCNN, channels=(4, bad, 4), names=("channels",))[0] == "error"
    for bad in (None, 16, "abc", (4, 4), (4, 4, 4, 4)):
        assert judge(C.DigitsCNN, channels=bad, names=("channels",))[0] == "error"
    layer = C.Conv2dUnfold(3, 4, (1, 2), stride=2, padding=1, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(0))
    x = images()
    check_close(layer(x), F.conv2d(x, layer.weight, layer.bias, stride=2, padding=1),
                "Conv2dUnfold")
    assert judge(layer, x.float(),
                 names=("dtype",))[0] == "error"       # float32 images, float64 kernels
    net = C.DigitsCNN(channels=(2, 3, 4), dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0))
    outcome, scores = judge(net, images(2, 1, 8, 8))
    assert outcome == "result" and scores.shape == (2, 10)
    assert judge(net, images(2, 3, 8, 8),
                 names=("c_in",))[0] == "error"  # three channels where one is expected


# ---- issue 27: channels of the wrong kind name the kind ------------------------------------------
def test_digits_cnn_channels_of_the_wrong_kind():
    "A string is no tuple of channels: TypeError naming channels and str; two numbers: ValueError."
    outcome, e = judge(C.DigitsCNN, channels="abc", names=("channels",))
    assert outcome == "error" and isinstance(e, TypeError) and "not str" in str(e)
    outcome, e = judge(C.DigitsCNN, channels=(16, 32), names=("channels",))
    assert outcome == "error" and isinstance(e, ValueError)
    for dtype in [getattr(torch, "float8_e4m3fn", torch.int64), torch.int64]:
        outcome, e = judge(C.DigitsCNN, dtype=dtype, names=("dtype",))
        assert outcome == "error" and isinstance(e, TypeError)
