"""Adversarial inputs for `foundations.training` (issue 15): every public name, every argument.

Each call goes through `judge`: it must return a result that matches an independent reference
(torch's
own softmax, cross-entropy and autograd), or raise a TypeError/ValueError from the library that
names
the argument. A missing file is a FileNotFoundError by design, checked directly. Run:
`pytest tests/library/test_adversarial_training.py`.
"""
import gzip, math
from pathlib import Path
import numpy as np, pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from helpers.adversarial import (judge, record_correct, bad_inputs, NOT_INTS, BAD_INTS,
                         NOT_NUMBERS, BAD_NUMBERS)
import foundations.training as T

FAST = settings(max_examples=15, derandomize=True, deadline=None, database=None)
SCORES = [T.logsumexp, T.log_softmax, T.softmax]
REFERENCE = {T.logsumexp: lambda x: torch.logsumexp(x, -1),
             T.log_softmax: lambda x: torch.log_softmax(x, -1),
             T.softmax: lambda x: torch.softmax(x, -1)}


def test_every_public_name_is_covered():
    assert set(T.__all__) == {"load_digits", "train_valid_split", "read_idx", "load_mnist",
                              "logsumexp",
                              "log_softmax", "softmax", "cross_entropy", "cross_entropy_grad",
                              "CrossEntropy",
                              "accuracy", "shuffled_batches", "fit"}


def close(result, expected, what, tol=1e-5):
    "Record whether `result` is `expected`: shape, dtype and device, then values (NaN where NaN)."
    record_correct(result.shape == expected.shape and result.dtype == expected.dtype
                   and result.device == expected.device,
                   f"{what}: {tuple(result.shape)} {result.dtype}")
    if result.device.type != "meta":
        record_correct(torch.allclose(result.double(), expected.double(), rtol=tol, atol=tol,
                                      equal_nan=True), what)


# ---- softmax and friends

@FAST
@given(fn=st.sampled_from(SCORES), bad=bad_inputs("tensor"))
def test_scores_functions_on_bad_or_odd_input(fn, bad):
    """logsumexp, log_softmax, softmax: a clear error naming x, or PyTorch's result in the input's
    dtype."""
    outcome, value = judge(fn, bad, names=("x ", "x must", "x needs"))
    if outcome == "result":
        low = bad.dtype in (torch.float16, torch.bfloat16)
        expected = REFERENCE[fn](bad.float()).to(bad.dtype) if low else REFERENCE[fn](bad)
        close(value, expected, f"{fn.__name__} on {bad!r:.60}", tol=1e-2 if low else 1e-5)


@pytest.mark.parametrize("fn", SCORES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_scores_with_more_classes_than_float16_can_count(fn, dtype):
    """70,000 equal scores in half precision: probabilities 1/70,000 that sum to 1, logs of -log
    70,000."""
    x = torch.zeros(1, 70_000, dtype=dtype)
    outcome, value = judge(fn, x, names=("x",))
    expected = REFERENCE[fn](x.float()).to(dtype)
    close(value, expected, f"{fn.__name__} on 70,000 {dtype} classes", tol=2e-2)
    if fn is T.softmax:
        record_correct(abs(value.float().sum(-1) - 1).max() < 2e-2, "softmax rows sum to 1")


def test_scores_on_huge_infinite_and_view_inputs():
    """Huge scores of both signs, rows of -inf, a stride-0 view and a transposed view against
    PyTorch."""
    inf = float("inf")
    cases = [torch.tensor([[1e38, 1e38, -1e38], [-inf, 0.0, 1.0], [-inf, -inf, -inf]]),
             torch.randn(3).expand(4, 3), torch.randn(5, 4).T,
             torch.randn(2, 3, 4, dtype=torch.float64)]
    for x in cases:
        for fn in SCORES: close(judge(fn, x)[1], REFERENCE[fn](x), f"{fn.__name__} on {x!r:.50}")


# ---- cross-entropy, its gradient, accuracy, the layer

LOSSES = [T.cross_entropy, T.cross_entropy_grad, T.accuracy]


def reference(fn, logits, targ):
    """What the function must give, from PyTorch alone (cross_entropy_grad: the gradient it adds
    into .g)."""
    if fn is T.cross_entropy: return F.cross_entropy(logits, targ.long())
    if fn is T.accuracy: return (logits.argmax(-1) == targ.long()).float().mean()
    leaf = logits.detach().clone().requires_grad_()
    F.cross_entropy(leaf, targ.long()).backward()
    return leaf.grad


@FAST
@given(fn=st.sampled_from(LOSSES), bad=bad_inputs("tensor"),
       side=st.sampled_from(["logits", "targ"]))
def test_classification_with_one_bad_or_odd_argument(fn, bad, side):
    "One bad or odd argument (logits or targ): a clear error naming it, or PyTorch's result."
    shape = tuple(getattr(bad, "shape", (3, 4)))
    n = shape[0] if len(shape) else 3
    if side == "logits": logits, targ = bad, torch.zeros(n, dtype=torch.long)
    else: logits, targ = torch.randn(n, 4), bad
    outcome, value = judge(fn, logits, targ, names=("logits", "targ", "inp"))
    if outcome == "result":
        if fn is T.cross_entropy_grad: value = logits.g
        close(value, reference(fn, logits, targ), f"{fn.__name__} with {side} = {bad!r:.60}")


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.uint8, torch.uint16,
                                   torch.uint32,
                                   torch.uint64, torch.bool, torch.float32])
def test_classification_with_each_target_dtype(fn, dtype):
    """Targets of every integer dtype (uint16 to uint64 too) give PyTorch's result; others a
    TypeError."""
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    targ = torch.tensor([0, 2, 1, 2])
    outcome, value = judge(fn, logits, targ.to(dtype), names=("targ",))
    if dtype not in (torch.bool, torch.float32):
        close(logits.g if fn is T.cross_entropy_grad else value, reference(fn, logits, targ),
              f"{dtype} targets")
    else: assert outcome == "error" and isinstance(value, TypeError)


def test_classification_ranges_devices_and_the_layer():
    """Out-of-range classes, logits and targets on two devices, an empty batch; CrossEntropy's
    gradient."""
    logits = torch.randn(4, 3)
    for targ, names in ((torch.tensor([0, 3, 1, 2]), ("classes 0 to 3",)),
                        (torch.tensor([0, -1, 1, 2]), ("-1",)),
                        (torch.zeros(4, dtype=torch.long, device="meta"), ("one device",))):
        for fn in LOSSES: assert judge(fn, logits, targ, names=names)[0] == "error"
    for fn in LOSSES:
        assert judge(fn, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                     names=("empty",))[0] == "error"
    meta = judge(T.cross_entropy, logits.to("meta"),
                 torch.zeros(4, dtype=torch.long, device="meta"))[1]
    record_correct(meta.device.type == "meta" and meta.shape == (), "cross_entropy on meta")
    layer, targ = T.CrossEntropy(), torch.tensor([0, 2, 1, 2])
    loss = layer(logits, targ)
    logits.g = None
    layer.backward()
    close(loss, F.cross_entropy(logits, targ), "CrossEntropy forward")
    close(logits.g, reference(T.cross_entropy_grad, logits, targ), "CrossEntropy backward")


# ---- data: the shipped digits, the split, IDX files and MNIST folders

@pytest.mark.parametrize("device, error", [("nope", ValueError), (2.5, TypeError), ([0], TypeError),
                                           ("cuda:99", ValueError)])
def test_load_digits_on_a_bad_device(device, error):
    outcome, e = judge(T.load_digits, device, names=("device",))
    assert outcome == "error" and isinstance(e, error)


def test_load_digits_on_meta_and_default():
    x, y = T.load_digits()
    record_correct(x.shape == (1797, 64) and y.shape == (1797,) and x.dtype == torch.float32,
                   "digits")
    x_meta, _ = judge(T.load_digits, "meta")[1]
    record_correct(x_meta.device.type == "meta" and x_meta.shape == (1797, 64), "digits on meta")


@FAST
@given(bad=st.sampled_from(NOT_NUMBERS + BAD_NUMBERS + [0, 1, -0.5, 1.5, 1e-9, 1 - 1e-9]))
def test_split_with_a_bad_valid_pct(bad):
    "valid_pct is checked as a number in (0, 1) before anything is rounded."
    outcome, e = judge(T.train_valid_split, torch.zeros(10, 2), torch.zeros(10), bad,
                       names=("valid_pct",))
    assert outcome == "error"


@FAST
@given(bad=bad_inputs("tensor"), side=st.sampled_from(["x", "y"]),
       seed=st.sampled_from(NOT_INTS + [-1, 0, 7]))
def test_split_with_bad_tensors_or_seed(bad, side, seed):
    "Bad or odd x or y, bad seeds: a clear error, or a partition of the rows."
    other = torch.arange(float(getattr(bad, "shape", (3,))[0] if getattr(bad, "ndim", 0) else 3))
    x, y = (bad, other) if side == "x" else (other, bad)
    outcome, parts = judge(T.train_valid_split, x, y, 0.5, seed,
                           names=(f"{side} ", "seed", "valid_pct", "x, y"))
    if outcome == "result" and x.device.type != "meta":
        x_train, y_train, x_valid, y_valid = parts
        record_correct(len(x_train) + len(x_valid) == len(x) and len(y_train) == len(x_train),
                       "split sizes")


def write_idx(path, t):
    "An IDX file of `t`, written independently of the library: header, sizes, big-endian values."
    code = {torch.uint8: 8, torch.int8: 9, torch.int16: 11, torch.int32: 12, torch.float32: 13,
            torch.float64: 14}
    big = t.numpy().astype(t.numpy().dtype.newbyteorder(">"))
    data = bytes([0, 0, code[t.dtype],
                  t.ndim]) + b"".join(s.to_bytes(4, "big") for s in t.shape) + big.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def test_read_idx_and_load_mnist(tmp_path):
    """Paths of the wrong kind, missing files, empty and 28x28 files, a mismatched pair, a bad split
    or device."""
    for bad in (None, 3, [tmp_path]):
        assert judge(T.read_idx, bad, names=("path",))[0] == "error"
        assert judge(T.load_mnist, bad, names=("path",))[0] == "error"
    with pytest.raises(FileNotFoundError, match="no IDX file at"): T.read_idx(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="never downloads"): T.load_mnist(tmp_path)
    for n in (0, 3):
        images = torch.arange(n * 28 * 28).reshape(n, 28, 28).remainder(256).to(torch.uint8)
        write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / "train-labels-idx1-ubyte", torch.arange(n).to(torch.uint8))
        x, y = judge(T.load_mnist, tmp_path)[1]
        record_correct(x.shape == (n, 784) and y.shape == (n,), f"load_mnist on {n} images")
        close(x, images.reshape(n, 784).float() / 255, "MNIST pixels")
    for kwargs, names in (({"split": "valid"}, ("split",)), ({"split": None}, ("split",)),
                          ({"device": "nope"}, ("device",))):
        assert judge(T.load_mnist, tmp_path, names=names, **kwargs)[0] == "error"
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.arange(2).to(torch.uint8))
    assert judge(T.load_mnist, tmp_path, names=("3 images but 2 labels",))[0] == "error"
    (tmp_path / "huge.idx").write_bytes(bytes([0, 0, 8, 2]) + (2 ** 31).to_bytes(4, "big") * 2)
    assert judge(T.read_idx, tmp_path / "huge.idx",
                 names=("truncated",))[0] == "error"   # checked before allocating


# ---- the training loop

@FAST
@given(bad=st.sampled_from(NOT_INTS + BAD_INTS), side=st.sampled_from(["n", "batch_size"]))
def test_shuffled_batches_with_a_bad_size(bad, side):
    sizes = {"n": 10, "batch_size": 3, side: bad}
    assert judge(T.shuffled_batches, sizes["n"], sizes["batch_size"], names=(side,))[0] == "error"


def test_shuffled_batches_options():
    """NumPy sizes work; a bad generator or device, or a huge n, is refused before anything is
    allocated."""
    batches = judge(T.shuffled_batches, np.int64(10), np.int32(4))[1]
    record_correct(torch.equal(torch.cat(batches).sort().values, torch.arange(10)), "a permutation")
    for args, names in (((10, 3, 42), ("generator",)), ((10, 3, None, "nope"), ("device",)),
                        ((2 ** 40, 3), ("n must be below",))):
        assert judge(T.shuffled_batches, *args, names=names)[0] == "error"
    record_correct(T.shuffled_batches(5, 2, device="meta")[0].device.type == "meta",
                   "batches on meta")


def tiny_data():
    g = torch.Generator().manual_seed(0)
    x_train, x_valid = torch.randn(8, 3, generator=g), torch.randn(4, 3, generator=g)
    return x_train, torch.arange(8) % 2, x_valid, torch.arange(4) % 2


def zero_step(xb, yb): return torch.zeros(())
def always_zero(x): return torch.zeros(x.shape[0], 2)


@pytest.mark.parametrize("position, bad", [(0, None), (0, 3), (1, "f"), (2, [[1.0]]), (3, None),
                                           (2, torch.randn(7, 3)), (5, torch.arange(3)),
                                           (3, torch.arange(8).float()), (3, torch.arange(8) > 3),
                                           (3, torch.arange(8) - 1),
                                           (2, torch.randn(8, 3, device="meta")),
                                           (2, torch.randn(0, 3)), (4, torch.randn(0, 3))])
def test_fit_with_one_bad_argument(position, bad):
    """A bad function, tensor, shape, dtype, class or device among fit's arguments: a clear error
    naming it."""
    args = [zero_step, always_zero, *tiny_data()]
    args[position] = bad
    if position in (3, 5) and isinstance(bad, torch.Tensor) and len(bad) == 0:
        args[position - 1] = bad
    if position == 2 and isinstance(bad, torch.Tensor) and bad.shape[0] == 0:
        args[3] = torch.zeros(0, dtype=torch.long)
    if position == 4 and isinstance(bad, torch.Tensor) and bad.shape[0] == 0:
        args[5] = torch.zeros(0, dtype=torch.long)
    names = ("step", "predict", "x_train", "y_train", "x_valid", "y_valid", "classes")
    assert judge(T.fit, *args, 1, names=names)[0] == "error"


@pytest.mark.parametrize("kwargs, names",
                         [({"n_epochs": 0}, ("n_epochs",)), ({"n_epochs": 1.5}, ("n_epochs",)),
                                           ({"batch_size": 0}, ("batch_size",)),
                          ({"generator": 1}, ("generator",)),
                                           ({"progress": 3}, ("progress",))])
def test_fit_with_a_bad_option(kwargs, names):
    assert judge(T.fit, zero_step, always_zero, *tiny_data(), **{"n_epochs": 1, **kwargs},
                 names=names)[0] == "error"


def test_fit_refuses_a_loss_it_cannot_read_and_records_the_right_one():
    """A loss on the meta device, of several values or not a tensor is refused; a float64 loss is
    averaged."""
    for step, names in ((lambda xb, yb: torch.zeros((), device="meta"), ("meta",)),
                        (lambda xb, yb: torch.zeros(2), ("one loss value",)),
                        (lambda xb, yb: 1.0, ("tensor",))):
        assert judge(T.fit, step, always_zero, *tiny_data(), 1, names=names)[0] == "error"
    history = judge(T.fit, lambda xb, yb: torch.full((1,), 2.0, dtype=torch.float64), always_zero,
                    *tiny_data(), 2,
                    batch_size=3)[1]
    record_correct(history["train_loss"] == [2.0, 2.0], f"train loss {history['train_loss']}")
    record_correct(history["valid_acc"] == [0.5, 0.5], f"valid accuracy {history['valid_acc']}")
    record_correct(all(abs(v - math.log(2)) < 1e-6 for v in history["valid_loss"]),
                   "valid loss log 2")


# ---- issue 27: IDX headers that overflow, gzip bombs, damaged digits, unsigned labels in fit -----
def test_read_idx_header_that_overflows_a_stride(tmp_path):
    "Sizes of 2**32 - 1 with a zero among them: no values, but no tensor could have those strides."
    big = (2 ** 32 - 1).to_bytes(4, "big")
    for ndim, code in ((3, 8), (5, 0x0E)):
        (tmp_path / "x.idx").write_bytes(bytes([0, 0, code, ndim]) + big * (ndim - 1) + bytes(4))
        outcome, e = judge(T.read_idx, tmp_path / "x.idx", names=("too large for any tensor",))
        assert outcome == "error" and isinstance(e, ValueError)


def test_read_idx_stops_decompressing_where_the_header_says(tmp_path):
    "A gzip bomb (2 announced bytes, 20 MB inflated) is refused after reading one byte too many."
    data = bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes(20_000_000)
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(data, compresslevel=1))
    outcome, e = judge(T.read_idx, tmp_path / "bomb.gz", names=("has bytes left over",))
    assert outcome == "error" and "more than 2 bytes" in str(e)


@pytest.mark.parametrize("damage", ["truncated", "not numbers", "out of range", "not gzip"])
def test_load_digits_on_a_damaged_file(tmp_path, monkeypatch, damage):
    "A damaged copy of the shipped data gives the library's ValueError, naming the file and why."
    from importlib.resources import files
    good = (files("foundations") / "data" / "digits.csv.gz").read_bytes()
    damaged = {"truncated": lambda: good[:-100], "not numbers": lambda: gzip.compress(b"a,b,c\n"),
               "out of range": lambda: gzip.compress(
                   gzip.decompress(good).replace(b"\n0,", b"\n99,", 1), compresslevel=1),
               "not gzip": lambda: b"hello"}
    data = damaged[damage]()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits.csv.gz").write_bytes(data)
    monkeypatch.setattr(T, "files", lambda package: tmp_path)
    outcome, e = judge(T.load_digits, names=("digits.csv.gz is damaged",))
    assert outcome == "error" and isinstance(e, ValueError)


def test_fit_with_unsigned_labels():
    "uint16 labels train as int64 ones do: the same history, number for number."
    x_train, y_train, x_valid, y_valid = tiny_data()

    def run(dtype):
        w = torch.zeros(3, 2, requires_grad=True)
        def step(xb, yb):
            loss = T.cross_entropy(xb @ w, yb)
            loss.backward()
            with torch.no_grad(): w.sub_(0.1 * w.grad)
            w.grad = None
            return loss
        return T.fit(step, lambda x: x @ w, x_train, y_train.to(dtype), x_valid,
                     y_valid.to(dtype), 2, 4, generator=torch.Generator().manual_seed(0))
    record_correct(run(torch.uint16) == run(torch.int64), "fit on uint16 labels")
