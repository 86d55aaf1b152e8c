"""The exercise checker grades right answers as right and wrong ones as wrong, with the hint each
deserves (or the plain report and no hint), and the exercise notebooks are current and pass with the
book's own code in place of the stubs.

The catalogue below, and `exercise_wrong_answers.py`, hold wrong implementations written the way a
learner might write them (loops, indexing, in-place tricks), independently of the slips inside the
catalogue modules. Each must fail with its hint on every one of 10 seeds, so that no check depends
on a lucky draw.
"""
import contextlib, functools, io, json, math, re, sys

import pytest
import torch
from torch import nn

from helpers import NBS, ROOT

import foundations.exercises as grader
from foundations.exercises import check, exercise_modules, hint, progress

sys.path.insert(0, str(ROOT / "tools"))
import make_exercises  # noqa: E402

SEEDS = range(10)   # 10 seeds per wrong answer; 50 were tried by hand, and no hint changed


@functools.cache
def solution_notebooks():
    "The exercise notebooks with the chapters' own code in place of the stubs: {name: notebook}."
    return make_exercises.exercise_notebooks(solutions=True)


def passes(name, fn, seed=0):
    "Run a check that must pass; return the one line it printed."
    out = io.StringIO()
    with contextlib.redirect_stdout(out): check(name, fn, seed=seed)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and re.search(r"all \d+ cases agree", lines[0]), lines
    return lines[0]


def failure(name, fn, seed=0, time_limit=10):
    "Run a check that must fail; return its message."
    with pytest.raises(AssertionError) as info: check(name, fn, seed=seed, time_limit=time_limit)
    return str(info.value)


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    "Each test records progress in its own file, never the reader's."
    monkeypatch.setenv("FOUNDATIONS_PROGRESS", str(tmp_path / "progress.json"))


@contextlib.contextmanager
def grading_the_book():
    "Let `check` grade the library's own objects (refused otherwise), for the reference tests."
    grader._BOOK_ALLOWED.on = True
    try: yield
    finally: grader._BOOK_ALLOWED.on = False


# ---- right answers, written differently from the book ----

def matmul_loops_jpi(a, b):
    "Loops in another order: column, then the sum, then the row."
    c = a.new_zeros(a.shape[0], b.shape[1])
    for j in range(b.shape[1]):
        for p in range(a.shape[1]):
            for i in range(a.shape[0]): c[i, j] += a[i, p] * b[p, j]
    return c

def matmul_addmm(a, b): return torch.addmm(a.new_zeros(a.shape[0], b.shape[1]), a, b)
def lin_addmm(x, w, b): return torch.addmm(b, x, w)
def relu_where(x): return torch.where(x > 0, x, torch.zeros_like(x))
def relu_mask(x): return x * (x > 0)
def mse_flat(output, targ):
    return ((output.reshape(-1) - targ.reshape(-1)) ** 2).sum() / targ.numel()

def lin_grad_assigning(inp, out, w, b):
    inp.g = out.g @ w.T
    w.g = torch.einsum("ni,no->io", inp, out.g)
    b.g = out.g.sum(0)

def relu_grad_where(inp, out): inp.g = torch.where(inp > 0, out.g, torch.zeros_like(out.g))

def mse_grad_adding(inp, targ):
    from foundations.core import add_grad
    diff = inp.reshape(-1) - targ.reshape(-1)
    add_grad(inp, (2 * diff / diff.numel()).reshape(inp.shape))

def xavier_normal_(n_in, n_out, *, dtype=None, device=None, generator=None):
    w = torch.empty(n_out, n_in, dtype=dtype, device=device)
    return w.normal_(0, n_in ** -0.5, generator=generator).T

def broadcast_shapes_padded(*shapes):
    shapes = [(s,) if isinstance(s, int) else s for s in shapes]
    n = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    result = []
    for sizes in zip(*padded):
        big = {s for s in sizes if s != 1}
        if len(big) > 1: raise ValueError(f"sizes {sizes} do not broadcast")
        result.append(big.pop() if big else 1)
    return tuple(result)

def cross_entropy_logsumexp(logits, targ):
    return (torch.logsumexp(logits, 1) - logits[torch.arange(len(targ)), targ]).mean()

def conv_with_torch(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=padding)

def unbroadcast_loop(grad, shape):
    "Right, written differently: sum the leading dimensions away one by one, then the stretched."
    while grad.ndim > len(shape): grad = grad.sum(0)
    for dim, size in enumerate(shape):
        if size == 1 and grad.shape[dim] != 1: grad = grad.sum(dim, keepdim=True)
    return grad

def kaiming_plain(n_in, n_out): return torch.randn(n_in, n_out) * math.sqrt(2 / n_in)
def xavier_dtype_only(n_in, n_out, dtype=None):
    return torch.randn(n_in, n_out, dtype=dtype) / math.sqrt(n_in)
def neuron_zip(inputs, weights, bias): return sum(w * x for w, x in zip(weights, inputs)) + bias
def relu_half(x): return (x + x.abs()) / 2 + 0.0 * x
def mse_mean_of_squares(output, targ): return (output.flatten() - targ.flatten()).square().mean()
def normalize_sub_div(x, mean, std):
    mean, std = torch.as_tensor(mean, dtype=x.dtype), torch.as_tensor(std, dtype=x.dtype)
    return (x - mean.reshape(-1, 1, 1)) / std.reshape(-1, 1, 1)

class LinearLayerPlain(nn.Module):
    "No dtype, device or generator: they are optional."
    def __init__(self, n_in, n_out, init=None):
        super().__init__()
        from foundations.init import kaiming_init
        w = (init or kaiming_init)(n_in, n_out)
        self.weight, self.bias = nn.Parameter(w.t().contiguous()), nn.Parameter(torch.zeros(n_out))
    def forward(self, x): return x @ self.weight.t() + self.bias

def topological_iterative(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        t, done = stack.pop()
        if done: order.append(t); continue
        if id(t) in seen or not getattr(t, "requires_grad", False): continue
        seen.add(id(t)); stack.append((t, True)); stack.extend((p, False) for p in t.parents)
    return order[::-1]

def mul_node(b_first, a_second):   # argument names differ from the stub's: passed by position
    from foundations.autograd import make_node
    return make_node(b_first.data * a_second.data, (b_first, a_second),
                     lambda g: (a_second.data * g, b_first.data * g), "mul")

def sigmoid_via_tanh(x):
    from foundations.autograd import make_node
    s = (torch.tanh(x.data / 2) + 1) / 2
    return make_node(s, (x,), lambda g: (g * s * (1 - s),), "sigmoid")

RIGHT = [("kaiming_init", kaiming_plain), ("xavier_init", xavier_dtype_only),
         ("neuron", neuron_zip),
         ("relu", relu_half), ("mse", mse_mean_of_squares), ("normalize", normalize_sub_div),
         ("LinearLayer", LinearLayerPlain), ("topological_order", topological_iterative),
         ("mul", mul_node), ("sigmoid", sigmoid_via_tanh),
         ("matmul_loops", matmul_loops_jpi), ("matmul_elementwise", matmul_addmm),
         ("matmul_einsum", matmul_addmm),
         ("lin", lin_addmm), ("relu", relu_where), ("relu", relu_mask), ("mse", mse_flat),
         ("lin_grad", lin_grad_assigning), ("relu_grad", relu_grad_where),
         ("mse_grad", mse_grad_adding),
         ("xavier_init", xavier_normal_), ("broadcast_shapes", broadcast_shapes_padded),
         ("cross_entropy", cross_entropy_logsumexp), ("conv2d_unfold", conv_with_torch),
         ("unbroadcast", unbroadcast_loop)]


@pytest.mark.parametrize("name", list(exercise_modules()))
def test_reference_passes(name):
    exercise = grader.exercise_named(name)
    reference = exercise.reference() if exercise.stub is None else exercise.stub["check"]()
    if reference is None: pytest.skip("no book version")
    with grading_the_book(): line = passes(name, reference)
    assert line.startswith(f"{name}: all ")


@pytest.mark.parametrize("name", ["relu", "lin_grad", "LinearLayer", "mul"])
def test_the_books_own_object_is_refused(name):
    message = failure(name, grader.exercise_named(name).reference())
    assert "this is the book's" in message and "not yours" in message


@pytest.mark.parametrize("name,fn", RIGHT, ids=[f"{n}-{f.__name__}" for n, f in RIGHT])
def test_right_answers_written_differently_pass(name, fn):
    for seed in (0, 1, 2): passes(name, fn, seed)


# ---- the catalogue of wrong answers, each with the hint it must get ----

def neuron_no_bias(inputs, weights, bias):
    total = 0
    for x, w in zip(inputs, weights): total += x * w
    return total

def matmul_b_swapped(a, b):
    n, k = a.shape; m = b.shape[1]
    c = torch.zeros(n, m, dtype=a.dtype)
    for i in range(n):
        for j in range(m):
            for p in range(k): c[i, j] += a[i, p] * b[j, p]
    return c

def matmul_assigns(a, b):
    c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            for p in range(a.shape[1]): c[i, j] = a[i, p] * b[p, j]
    return c

def matmul_float32(a, b):
    c = torch.zeros(a.shape[0], b.shape[1])
    for i in range(a.shape[0]):
        for j in range(b.shape[1]): c[i, j] = (a[i] * b[:, j]).sum()
    return c

def matmul_transposed(a, b):
    c = torch.zeros(b.shape[1], a.shape[0], dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]): c[j, i] = (a[i, :] * b[:, j]).sum()
    return c

def matmul_broadcast_row(a, b):
    c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    for i in range(a.shape[0]): c[i] = (a[i] * b).sum(0)
    return c

def einsum_swapped_output(a, b): return torch.einsum("ik,kj->ji", a, b)

def broadcast_from_the_left(*shapes):
    shapes = [(s,) if isinstance(s, int) else s for s in shapes]
    n = max((len(s) for s in shapes), default=0)
    result = []
    for d in range(n):
        sizes = [s[d] for s in shapes if d < len(s)]
        big = {s for s in sizes if s != 1}
        if len(big) > 1: raise ValueError("no")
        result.append(big.pop() if big else 1)
    return tuple(result)

def broadcast_takes_max(*shapes):
    shapes = [(s,) if isinstance(s, int) else s for s in shapes]
    n = max((len(s) for s in shapes), default=0)
    return tuple(max([s[d - n + len(s)] for s in shapes if d - n + len(s) >= 0]) for d in range(n))

def normalize_no_reshape(x, mean, std):
    return (x - torch.as_tensor(mean, dtype=x.dtype)) / torch.as_tensor(std, dtype=x.dtype)

def lin_no_bias(x, w, b): return x @ w
def lin_pytorch_layout(x, w, b): return x @ w.t() + b

def relu_leaky(x): return torch.where(x > 0, x, x * 0.01)
def relu_inverted(x): return torch.where(x < 0, x, torch.zeros_like(x))

def relu_in_place(x):
    x[x < 0] = 0
    return x

def mse_broadcast(output, targ): return (output - targ).pow(2).mean()
def mse_sum(output, targ): return ((output.squeeze(-1) - targ) ** 2).sum()
def mse_n_minus_1(output, targ): return ((output.squeeze(-1) - targ) ** 2).sum() / (len(targ) - 1)

def xavier_kaimings_scale(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype, generator=generator) * math.sqrt(2 / n_in)

def kaiming_xaviers_scale(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype, generator=generator) / math.sqrt(n_in)

def kaiming_fan_out(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype, generator=generator) * math.sqrt(2 / n_out)

def kaiming_uniform(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.rand(n_in, n_out, dtype=dtype, generator=generator) * math.sqrt(2 / n_in)

def kaiming_no_generator(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype) * math.sqrt(2 / n_in)

def mse_grad_no_n(inp, targ): inp.g = 2 * (inp.squeeze(-1) - targ).unsqueeze(-1).reshape(inp.shape)
def mse_grad_broadcast(inp, targ): inp.g = 2 * (inp - targ) / len(targ)
def mse_grad_sign(inp, targ):
    inp.g = (2 * (targ.reshape(-1) - inp.reshape(-1)) / len(targ)).reshape(inp.shape)
def mse_grad_adds_into_missing(inp, targ):
    inp.g += 2 * (inp.reshape(-1) - targ.reshape(-1)).reshape(inp.shape) / len(targ)

def relu_grad_inverted(inp, out): inp.g = out.g * (inp <= 0)
def relu_grad_leaky(inp, out): inp.g = out.g * torch.where(inp > 0, 1.0, 0.01).to(out.g.dtype)
def relu_grad_kink(inp, out): inp.g = out.g * (inp >= 0)
def relu_grad_mask_only(inp, out): inp.g = (inp > 0).to(inp.dtype)

def relu_grad_in_place(inp, out):
    out.g[inp <= 0] = 0
    inp.g = out.g

def lin_grad_bias_mean(inp, out, w, b):
    inp.g, w.g, b.g = out.g @ w.T, inp.T @ out.g, out.g.mean(dim=0)

def lin_grad_w_transposed(inp, out, w, b):
    inp.g, w.g, b.g = out.g @ w.T, out.g.T @ inp, out.g.sum(0)

def lin_grad_no_transpose(inp, out, w, b):
    inp.g, w.g, b.g = out.g @ w, inp.T @ out.g, out.g.sum(0)

def lin_grad_forgets_bias(inp, out, w, b):
    inp.g, w.g = out.g @ w.T, inp.T @ out.g

def forward_and_backward_accumulates(inp, targ, w1, b1, w2, b2):
    from foundations.backprop import lin_grad, relu_grad, mse_grad
    l1 = inp @ w1 + b1
    l2 = l1.clamp_min(0)
    out = l2 @ w2 + b2
    loss = ((out[:, 0] - targ) ** 2).mean()
    mse_grad(out, targ); lin_grad(l2, out, w2, b2); relu_grad(l1, l2); lin_grad(inp, l1, w1, b1)
    return loss

def make_lin_class(bias_grad):
    from foundations.modules import LayerFunction
    class Lin(LayerFunction):
        def __init__(self, w, b): super().__init__(); self.w, self.b = w, b
        def forward(self, inp): return inp @ self.w + self.b
        def bwd(self, out, inp):
            inp.g, self.w.g, self.b.g = out.g @ self.w.T, inp.T @ out.g, bias_grad(out.g)
    return Lin

def make_relu_class():
    from foundations.modules import LayerFunction
    class Relu(LayerFunction):
        def forward(self, inp): return inp.clamp_min(0)
        def bwd(self, out, inp): inp.g = out.g * (inp < 0)
    return Relu

def make_mse_class():
    from foundations.modules import LayerFunction
    from foundations.backprop import mse_grad
    class Mse(LayerFunction):
        def forward(self, inp, targ): return ((inp - targ) ** 2).mean()   # (n, 1) - (n,): (n, n)
        def bwd(self, out, inp, targ): mse_grad(inp, targ)
    return Mse

class MyReluNoMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp): ctx.save_for_backward(inp); return inp.clamp_min(0)
    @staticmethod
    def backward(ctx, grad_output): return grad_output

class LinearLayerNoTranspose(nn.Module):
    def __init__(self, n_in, n_out, *, dtype=None, device=None, generator=None, init=None):
        super().__init__()
        w = torch.randn(n_in, n_out, dtype=dtype, generator=generator) * math.sqrt(2 / n_in)
        self.weight = nn.Parameter(w if init is None else init(n_in, n_out, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=self.weight.dtype))
    def forward(self, x): return x @ self.weight + self.bias

class LinearLayerXavier(nn.Module):
    def __init__(self, n_in, n_out, *, dtype=None, device=None, generator=None, init=None):
        super().__init__()
        w = torch.randn(n_in, n_out, dtype=dtype, generator=generator) / math.sqrt(n_in)
        w = w if init is None else init(n_in, n_out, dtype=dtype)
        self.weight = nn.Parameter(w.t().contiguous())
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=self.weight.dtype))
    def forward(self, x): return x @ self.weight.t() + self.bias

def cross_entropy_naive(logits, targ):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    return -p[torch.arange(len(targ)), targ].log().mean()

def cross_entropy_sum(logits, targ):
    return -torch.log_softmax(logits, 1)[torch.arange(len(targ)), targ].sum()

def cross_entropy_block(logits, targ): return -torch.log_softmax(logits, -1)[:, targ].mean()

def cross_entropy_grad_no_n(inp, targ):
    inp.g = torch.softmax(inp, 1) - torch.nn.functional.one_hot(targ, inp.shape[1]).to(inp.dtype)

def conv_no_bias(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight, None, stride=stride, padding=padding)

def conv_flipped(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight.flip(2, 3), bias, stride=stride, padding=padding)

def unbroadcast_mean(grad, shape):
    while grad.ndim > len(shape): grad = grad.mean(0)
    for dim, size in enumerate(shape):
        if size == 1: grad = grad.mean(dim, keepdim=True)
    return grad

def autograd_cross_entropy_summed(logits, targets):
    picked = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.data.dtype)
    return -(logits.log_softmax(-1) * picked).sum()

def stub(*args): raise NotImplementedError("your code here")

CATALOGUE = [  # (exercise, wrong implementation, a phrase its hint must contain)
    ("neuron", neuron_no_bias, "bias is missing"),
    ("matmul_loops", matmul_b_swapped, "`b` is indexed the wrong way round"),
    ("matmul_loops", matmul_assigns, "keeps only the last product"),
    ("matmul_loops", matmul_float32, "create the result with the inputs' dtype"),
    ("matmul_elementwise", matmul_transposed, "transposed"),
    ("matmul_broadcast", matmul_broadcast_row, "make it a column"),
    ("matmul_einsum", einsum_swapped_output, "output subscripts are swapped"),
    ("broadcast_shapes", broadcast_from_the_left, "lined up from their first dimension"),
    ("broadcast_shapes", broadcast_takes_max, "raise `ValueError`"),
    ("normalize", normalize_no_reshape, "reshape them to (C, 1, 1)"),
    ("lin", lin_no_bias, "bias is missing"),
    ("lin", lin_pytorch_layout, "`w` is transposed"),
    ("relu", relu_leaky, "leaky"),
    ("relu", relu_inverted, "mask is inverted"),
    ("relu", relu_in_place, "Build new tensors instead of writing into the arguments"),
    ("mse", mse_broadcast, "broadcasts to an (n, n) table"),
    ("mse", mse_sum, "divides by n"),
    ("mse", mse_n_minus_1, "divided by the wrong count"),
    ("xavier_init", xavier_kaimings_scale, "That is Kaiming's scale"),
    ("kaiming_init", kaiming_xaviers_scale, "That is Xavier's scale"),
    ("kaiming_init", kaiming_fan_out, "uses n_out"),
    ("kaiming_init", kaiming_uniform, "`torch.rand` draws from [0, 1)"),
    ("kaiming_init", kaiming_no_generator, "generator is ignored"),
    ("mse_grad", mse_grad_no_n, "not divided by n"),
    ("mse_grad", mse_grad_broadcast, "broadcasts to (n, n)"),
    ("mse_grad", mse_grad_sign, "sign is flipped"),
    ("mse_grad", mse_grad_adds_into_missing, None),
    ("relu_grad", relu_grad_inverted, "mask is inverted"),
    ("relu_grad", relu_grad_leaky, "leaky ReLU"),
    ("relu_grad", relu_grad_kink, "`inp > 0`, not `inp >= 0`"),
    ("relu_grad", relu_grad_mask_only, "Only the mask is stored"),
    ("relu_grad", relu_grad_in_place, "changed its input out.g in place"),
    ("lin_grad", lin_grad_bias_mean, "averaged over the batch"),
    ("lin_grad", lin_grad_w_transposed, "w.g is transposed"),
    ("lin_grad", lin_grad_no_transpose, "missing a transpose"),
    ("lin_grad", lin_grad_forgets_bias, "b.g was not set"),
    ("forward_and_backward", forward_and_backward_accumulates, "clear the five tensors' `.g`"),
    ("Lin", make_lin_class(lambda g: g.mean(0)), "averaged over the batch"),
    ("Relu", make_relu_class(), "mask is inverted"),
    ("Mse", make_mse_class(), "broadcasts to an (n, n) table"),
    ("MyRelu", MyReluNoMask, "passes `grad_output` everywhere"),
    ("LinearLayer", LinearLayerNoTranspose, "stores it transposed, (n_out, n_in)"),
    ("LinearLayer", LinearLayerXavier, "needs Kaiming's"),
    ("cross_entropy", cross_entropy_naive, "overflows"),
    ("cross_entropy", cross_entropy_sum, "summed over the batch"),
    ("cross_entropy", cross_entropy_block, "picks an (n, n) block"),
    ("cross_entropy_grad", cross_entropy_grad_no_n, "not divided by n"),
    ("conv2d_unfold", conv_no_bias, "bias is missing"),
    ("conv2d_unfold", conv_flipped, "kernel is flipped"),
    ("unbroadcast", unbroadcast_mean, "not their mean"),
    ("autograd.cross_entropy", autograd_cross_entropy_summed, "summed over the batch"),
]


from helpers.exercise_wrong_answers import MORE  # noqa: E402
CATALOGUE += MORE


def test_catalogue_is_large():
    assert len(CATALOGUE) >= 80
    covered = {name for name, _, _ in CATALOGUE}
    assert set(exercise_modules()) <= covered, set(exercise_modules()) - covered
    assert len({fn for _, fn, _ in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("name,fn,hint", CATALOGUE, ids=[
    f"{n}-{getattr(f, '__name__', 'class')}" for n, f, _ in CATALOGUE])
def test_wrong_answer_fails_with_its_hint_on_every_seed(name, fn, hint):
    endless = hint == "A loop that never ends?"   # 1 s of waiting per seed is enough
    for seed in SEEDS[:2] if endless else SEEDS:
        message = failure(name, fn, seed, time_limit=1 if endless else 10)
        assert re.search(
            "the smallest that fails|took longer|passed every case, then failed|calls the "
                         "book's own", message), message
        if hint is None:   # the plain report: what was expected and what came back, no hint
            assert "Hint:" not in message and "expected" in message, message
        else: assert hint in message, f"seed {seed}: expected a hint with {hint!r}, got:\n{message}"


def test_message_names_the_wrong_gradient_and_the_case():
    message = failure("lin_grad", lin_grad_bias_mean)
    assert "b.g:" in message and "inp.g" not in message.split("Hint:")[0] and "w.g" not in message
    assert re.search(r"inp shape \(\d+, \d+\) float\d+", message)
    assert "largest difference" in message or "expected" in message


def test_readers_error_is_shown_and_chained():
    with pytest.raises(AssertionError) as info: check("lin", lin_pytorch_layout)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "raised RuntimeError" in str(info.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as info: check("matmul_loop", matmul_addmm)
    assert "did you mean 'matmul_loops'" in str(info.value)
    for name in ("matmul_loops", "lin_grad", "LinearLayer", "conv2d_unfold"):
        assert name in str(info.value)


def test_coverage():
    required = """neuron relu matmul_loops matmul_elementwise matmul_broadcast matmul_einsum
                  broadcast_shapes normalize lin mse xavier_init kaiming_init mse_grad relu_grad
                  lin_grad forward_and_backward Lin Relu Mse MyRelu LinearLayer conv2d_unfold
                  cross_entropy cross_entropy_grad unbroadcast autograd.cross_entropy
                  topological_order backward mul matmul tensor_sum log_softmax sigmoid""".split()
    assert set(required) <= set(exercise_modules())


# ---- the exercise notebooks ----

@functools.cache
def generated_notebooks():
    "The exercise notebooks as the tool writes them now: {file name: notebook}."
    return make_exercises.exercise_notebooks()


def test_committed_exercise_notebooks_are_current():
    "Regenerate the exercise notebooks from the chapters; the committed ones must be identical."
    committed, generated = NBS / "exercises", generated_notebooks()
    assert sorted(p.name for p in committed.glob("*.ipynb")) == sorted(generated), \
        "nbs/exercises/ must hold one notebook per chapter with exercises: run " \
        "`python tools/make_exercises.py`"
    stale = [n for n, nb in generated.items()
             if (committed / n).read_text() != make_exercises.as_text(nb)]
    assert not stale, f"out of date: {stale}; run `python tools/make_exercises.py`"


def test_exercise_notebooks_export_nothing_and_have_the_frame():
    chapter_setup = "".join(json.loads((NBS / "01_matmul.ipynb").read_text())["cells"][2]["source"])
    for name, nb in generated_notebooks().items():
        sources = ["".join(c["source"]) for c in nb["cells"]]
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        assert sources[0].startswith("# Exercises: ") and "\n> " in sources[0]
        assert f"blob/main/nbs/exercises/{name})" in sources[1]
        assert sources[2] == chapter_setup
        assert not any(re.search(r"^#\|\s*(export|default_exp)", s, re.M) for s in code), name
        checks = [s for s in code if re.search(r"^check\(", s, re.M)]
        assert all(s.startswith("#| notest\n") for s in checks), \
            "nbdev-test must skip the checks of the stubs"
        stubs = [s for s in code if 'raise NotImplementedError("your code here")' in s]
        assert checks and len(stubs) == len(checks), name
        for source in code: compile(source, name, "exec")   # every stub is valid Python


@pytest.mark.parametrize("name", sorted(p.name for p in (NBS / "exercises").glob("*.ipynb")))
def test_exercise_notebook_passes_with_the_books_code(name):
    nb = solution_notebooks()[name]
    namespace, out = {"__name__": "__main__"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{name} cell", "exec"), namespace)
    n_checks = sum(bool(re.search(r"^check\(", "".join(c["source"]), re.M)) for c in nb["cells"])
    assert len(re.findall(r"cases agree", out.getvalue())) == n_checks, out.getvalue()


def test_sidebar_lists_every_exercise_notebook():
    from build_site import chapter_order
    listed = [name for name in chapter_order(NBS) if name.startswith("exercises/")]
    assert listed == [f"exercises/{name}" for name in generated_notebooks()], \
        "nbs/sidebar.yml's Exercises section must list every exercise notebook, in chapter order"
    assert "10_exercises.ipynb" in chapter_order(NBS)


def test_stubs_keep_signature_and_docstring():
    code = '''def helper(x): return x

class Layer(Base):
    "A layer."
    def __init__(self, w,  # the weights
                 b):
        "Keep them."
        self.w, self.b = w, b
        more = 1
    def forward(self, inp): return inp @ self.w
    def __repr__(self): return "Layer()"

def only_doc(x):
    "Nothing else."
'''
    stub = make_exercises.STUB
    layer = make_exercises.make_stub(code, "Layer")
    assert "def helper(x): return x" in layer and 'def __repr__(self): return "Layer()"' in layer
    assert (f'    def __init__(self, w,  # the weights\n                 b):\n'
            f'        "Keep them."\n        {stub}\n') in layer
    assert f"    def forward(self, inp): {stub}\n" in layer and "self.w, self.b = w, b" not in layer
    assert make_exercises.make_stub(code, "only_doc").endswith(f'    "Nothing else."\n    {stub}')
    twice = make_exercises.make_stub(make_exercises.make_stub(code, "Layer"), "only_doc")
    compile(twice, "stub", "exec")


# ---- for the learner: hints, progress, "did you mean", Run all, the time limit ----

def test_hints_are_graduated_for_every_exercise(capsys):
    for name in exercise_modules():
        for _ in (1, 2, 3): hint(name)   # the idea, then the shapes, then the formula
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(":")[0] for line in lines] == [f"{name}, hint {k} of 3"
                                                           for k in (1, 2, 3)]
        assert "the book's version gives" in lines[1] and "The book's version:" in lines[2]


def test_progress_is_honest(capsys):
    with grading_the_book(): check("relu", grader.exercise_named("relu").reference())
    with pytest.raises(AssertionError): check("lin", lin_no_bias)
    done = progress()
    out = capsys.readouterr().out
    assert done["relu"] and not done["lin"] and "all of them" not in out
    assert f"1 of {len(exercise_modules())} exercises passed in this environment" in out


def test_a_stub_is_reported_and_run_all_goes_on(capsys):
    def relu(x): raise NotImplementedError("your code here")
    check("relu", relu)   # no exception: "Run all" goes on to the next exercise
    assert "relu: not written yet" in capsys.readouterr().out


def test_misspelt_names_get_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'lin_grad'"): check("lin_grd", lin_no_bias)
    with pytest.raises(ValueError, match="did you mean 'kaiming_init'"): hint("kaiming")


def test_time_limit_works_outside_the_main_thread():
    import threading
    def relu(x):
        while True: pass
    box = {}
    def run():
        try: check("relu", relu, time_limit=0.5)
        except AssertionError as error: box["message"] = str(error)
    worker = threading.Thread(target=run); worker.start(); worker.join(30)
    assert "took longer than 0.5 s on inputs of shape x (1,)" in box["message"]


def test_thin_wrappers_of_the_book_are_refused():
    from foundations.backprop import relu_grad as books_relu_grad
    def relu_grad(inp, out): books_relu_grad(inp, out)
    assert "calls the book's own relu_grad" in failure("relu_grad", relu_grad)
    assert "this is the book's" in failure("relu_grad", functools.partial(books_relu_grad))


def test_optional_arguments_may_be_left_out(capsys):
    check("kaiming_init", kaiming_plain)
    out = capsys.readouterr().out
    assert "not tested: device=, dtype=, generator=" in out and "torch.manual_seed" in out


def test_no_exercise_notebook_imports_an_answer():
    "A name the notebook asks for is never imported: a skipped cell must not grade the book's."
    for name, nb in generated_notebooks().items():
        answers = {re.search(r'check\("([^"]+)"', "".join(c["source"]))[1].rsplit(".", 1)[-1]
                   for c in nb["cells"] if re.search(r"^check\(", "".join(c["source"]), re.M)}
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code": continue
            for m in re.finditer(r"^from \S+ import (.+)$", source, re.M):
                imported = {n.strip().split(" as ")[0] for n in m[1].split(",")}
                assert not imported & answers, (name, imported & answers)


def test_solutions_are_folded_after_each_check():
    for nb in generated_notebooks().values():
        cells = nb["cells"]
        for i, cell in enumerate(cells):
            if re.search(r"^check\(", "".join(cell["source"]), re.M):
                after = "".join(cells[i + 1]["source"])
                assert cells[i + 1]["cell_type"] == "markdown" and after.startswith("<details>")


def test_no_stale_pointers_in_the_lead_ins():
    "The chapters' sentences about their own code (the `return` below) are left out of exercises."
    for name, nb in generated_notebooks().items():
        for cell in nb["cells"][4:]:   # after the notebook's own introduction
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and not text.startswith("<details>"):
                assert not re.search(r"\bbelow\b|the line before it|folded helper", text), \
                    (name, text[:200])
