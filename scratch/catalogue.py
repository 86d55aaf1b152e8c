# %% imports
import math
import torch
from foundations.exercises import (Case, Stat, Unusable, book, call, exercise_named, grads,
                                   register, returns)

_DTYPES = (torch.float32, torch.float64)

def _randn(g, *shape, dtype=torch.float64):
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)

def _with_zeros(g, t):
    "`t` with a quarter of its entries exactly zero (ReLU's kink) and, from 3 on, one of each sign."
    zero = torch.rand(t.shape, generator=g, dtype=torch.float64) < 0.25
    t = torch.where(zero, torch.zeros_like(t), t)
    if t.numel() >= 3:
        flat = t.view(-1)
        flat[:2] = torch.stack([flat[0].abs() + 0.1, -flat[1].abs() - 0.1])
    return t

def _neuron_cases(g):
    cases = []
    for n in (1, 2, 3, 5):
        x, w, b = _randn(g, n), _randn(g, n), _randn(g, 1).item()
        cases.append(Case(("inputs", "weights", "bias"), (x.tolist(), w.tolist(), b)))
        for dtype in _DTYPES:
            cases.append(Case(("inputs", "weights", "bias"), (x.to(dtype), w.to(dtype), b)))
    return cases

def _neuron_no_bias(inputs, weights, bias): return sum(x * w for x, w in zip(inputs, weights))
def _neuron_skips_last(inputs, weights, bias):
    return sum(x * w for x, w in zip(inputs[:-1], weights[:-1])) + bias
def _neuron_mean(inputs, weights, bias):
    return sum(x * w for x, w in zip(inputs, weights)) / len(inputs) + bias

register("neuron", "matmul", _neuron_cases, slips=[
    (_neuron_no_bias, "The bias is missing: a neuron adds `bias` once, after the weighted sum."),
    (_neuron_skips_last,
        "The last input is left out: the loop must run over all `len(inputs)` positions "
        "(`range(len(inputs))`)."),
    (_neuron_mean,
        "The weighted inputs are averaged: a neuron sums them (no division by the number of "
        "inputs)."),
])

_MATMUL_SHAPES = ((1, 1, 1), (1, 3, 1), (2, 1, 3), (1, 4, 2), (3, 2, 1), (2, 2, 2), (2, 3, 4),
                  (4, 3, 2), (3, 3, 3), (4, 5, 3))

def _matmul_cases(g):
    cases = [Case(("a", "b"), (_randn(g, n, k, dtype=dtype), _randn(g, k, m, dtype=dtype)))
             for n, k, m in _MATMUL_SHAPES for dtype in _DTYPES]
    cases.append(Case(("a", "b"), (_randn(g, 3, 4), _randn(g, 2, 4).T)))   # b: a transposed view
    big = _randn(g, 2, 3, dtype=torch.float32) * 1e15                         # large; a zero row
    zero_row = torch.cat([torch.zeros(1, 2), _randn(g, 2, 2, dtype=torch.float32)])
    cases.append(Case(("a", "b"), (big, zero_row)))
    return cases

_MATMUL_SLIPS = [
    (lambda a, b: (a @ b).T,
        "The result is transposed: `c[i, j]` is row i of `a` times column j of `b`, and the result "
        "has shape (n, m)."),
    (lambda a, b: a @ b.T,
        "`b` is indexed the wrong way round: the sum runs down column j of `b`, `b[p, j]` (or "
        "`b[:, j]`), not `b[j, p]`."),
    (lambda a, b: a.T @ b,
        "`a` is indexed the wrong way round: the sum runs along row i of `a`, `a[i, p]` (or `a[i, "
        ":]`), not `a[p, i]`."),
    (lambda a, b: a[:, -1:] @ b[-1:],
        "Each `c[i, j]` keeps only the last product: add into it (`+=`), rather than assign, "
        "inside the innermost loop."),
    (lambda a, b: a[:, :-1] @ b[:-1],
        "The sum misses its last term: the innermost loop must run over all k positions, "
        "`range(k)`."),
    (lambda a, b: (a @ b).float(),
        "The values arrive as float64 but the result is float32: create the result with the "
        "inputs' dtype and device, `torch.zeros(n, m, dtype=a.dtype, device=a.device)`."),
]

for _name in ("matmul_loops", "matmul_elementwise"):
    register(_name, "matmul", _matmul_cases, slips=_MATMUL_SLIPS)

def _broadcast_cases(g):
    fixed = [(), ((),), ((3,),), ((1,), (3,)), ((3,), (1,)), ((2, 3), (3,)), ((3,), (2, 3)),
             ((4, 1), (3,)), ((5, 1, 3), (4, 1)), ((1,), (0,)), ((2, 1), (1, 3), (1, 1, 1)),
             ((3, 1, 2), ()), ((7,), (7,)),
             ((2,), (3,)), ((2, 3), (3, 2)), ((4, 3), (4,)), ((1, 2), (3, 1), (2, 2, 3)),
             (3,), ((2, 1), 4), (1, (5, 1)), (2, 3)]   # a bare int n is the shape (n,)
    for _ in range(6):   # shapes that broadcast: a target, copies with sizes set to 1 or dropped
        n_dims = int(torch.randint(1, 5, (1,), generator=g))
        target = tuple(int(s) for s in torch.randint(1, 5, (n_dims,), generator=g))
        shapes = []
        for _ in range(int(torch.randint(2, 4, (1,), generator=g))):
            keep = target[int(torch.randint(0, len(target) + 1, (1,), generator=g)):]
            ones = torch.rand(len(keep), generator=g) < 0.4
            shapes.append(tuple(1 if one else s for s, one in zip(keep, ones.tolist())))
        fixed.append(tuple(shapes))
    return [Case(tuple(f"shape{i}" for i in range(len(shapes))), shapes) for shapes in fixed]

def _broadcast_from_left(*shapes):
    n = max((len(s) for s in shapes), default=0)
    padded = [tuple(s) + (1,) * (n - len(s)) for s in shapes]
    result = []
    for sizes in zip(*padded):
        big = {s for s in sizes if s != 1}
        if len(big) > 1: _raise_mismatch(sizes)
        result.append(big.pop() if big else 1)
    return tuple(result)

def _raise_mismatch(sizes): raise ValueError(f"sizes {sizes} do not broadcast")

def _broadcast_no_check(*shapes):
    n = max((len(s) for s in shapes), default=0)
    return tuple(max([s[len(s) - n + d] for s in shapes if len(s) - n + d >= 0] + [1])
                 for d in range(n))

def _ints_ok(slip):
    "The slip with a bare int n read as (n,), so that it slips only where it says."
    def read(*shapes): return slip(*((s,) if isinstance(s, int) else tuple(s) for s in shapes))
    return read

def _broadcast_tuples_only(*shapes):
    for s in shapes: len(s)   # a bare int: TypeError, as `len(3)` raises
    return tuple(torch.broadcast_shapes(*shapes))

def _broadcast_list(*shapes): return list(torch.broadcast_shapes(*shapes))

def _broadcast_unreversed(*shapes): return tuple(reversed(torch.broadcast_shapes(*shapes)))

register("broadcast_shapes", "broadcasting", _broadcast_cases, slips=[
    (_broadcast_tuples_only,
        "A bare int n stands for the shape (n,), as the docstring says: turn each int into a "
        "one-element tuple first."),
    (_ints_ok(_broadcast_from_left),
        "Shapes are lined up from their first dimension: broadcasting aligns them at the last "
        "dimension and works backwards, so a missing dimension is a missing *leading* one."),
    (_ints_ok(_broadcast_no_check),
        "Sizes that differ, where neither is 1, cannot broadcast: raise `ValueError` there instead "
        "of taking the larger size."),
    (_ints_ok(_broadcast_list), "Return a tuple (`tuple(result)`), not a list."),
    (_ints_ok(_broadcast_unreversed),
        "The sizes come out in reverse order: the loop visits the last dimension first, so reverse "
        "the result at the end."),
])

def _normalize_cases(g):
    cases = []
    shapes = ((1, 1, 1), (3, 2, 2), (1, 3, 3, 3), (2, 3, 4, 5), (2, 1, 3, 2), (3, 2, 4, 4))
    for i, shape in enumerate(shapes):
        for dtype in _DTYPES:
            c = shape[-3]
            mean, std = _randn(g, c), _randn(g, c).abs() + 0.5
            as_given = (mean.tolist(), std.tolist()) if i % 2 else (mean.to(dtype), std.to(dtype))
            x = _randn(g, *shape, dtype=dtype) * 3 + 1
            cases.append(Case(("x", "mean", "std"), (x, *as_given)))
    cases.append(Case(("x", "mean", "std"), (_randn(g, 2, 3, 2, 2), 0.5, 2.0)))   # one for all
    return cases

def _normalize_stats(x, mean, std):
    return (torch.as_tensor(mean, dtype=x.dtype), torch.as_tensor(std, dtype=x.dtype))

def _normalize_unshaped(x, mean, std):
    mean, std = _normalize_stats(x, mean, std)
    return (x - mean) / std

def _normalize_order(x, mean, std):
    mean, std = _normalize_stats(x, mean, std)
    return x / std.reshape(-1, 1, 1) - mean.reshape(-1, 1, 1)

def _normalize_times(x, mean, std):
    mean, std = _normalize_stats(x, mean, std)
    return (x - mean.reshape(-1, 1, 1)) * std.reshape(-1, 1, 1)

register("normalize", "broadcasting", _normalize_cases, slips=[
    (_normalize_unshaped,
        "`mean` and `std` of shape (C,) line up with the *last* dimension of x, the width, not the "
        "channels: reshape them to (C, 1, 1) first."),
    (_normalize_order,
        "Subtract the mean first, then divide: `(x - mean) / std`, not `x / std - mean`."),
    (_normalize_times, "Divide by the standard deviation rather than multiply by it."),
])

# (a[i, :, None] * b).sum(dim=1), and (a[i] * b).sum(0), a row rather than a column (k == m)
def _matmul_broadcast_summed_wrong_dim(a, b): return a * b.sum(1)[None, :]
def _matmul_broadcast_row(a, b): return a * b.sum(0)[None, :]

register("matmul_broadcast", "broadcasting", _matmul_cases, slips=[
    (_matmul_broadcast_summed_wrong_dim,
        "The sum runs over the wrong dimension: `a[i, :, None] * b` has shape (k, m), and the "
        "product's row i is its sum over k, `dim=0`."),
    (_matmul_broadcast_row,
        "`a[i]` is a row, shape (k,), so it lines up with the columns of b: make it a column, "
        "`a[i, :, None]`, shape (k, 1), to line up with b's rows."),
    *_MATMUL_SLIPS])

register("matmul_einsum", "broadcasting", _matmul_cases, slips=[
    (lambda a, b: torch.einsum("ik,kj->ji", a, b),
        "The output subscripts are swapped: `ik,kj->ij` gives row i, column j; `->ji` gives the "
        "transpose."),
    (lambda a, b: torch.einsum("ik,jk->ij", a, b),
        "The subscripts of b are swapped: the index that is summed, k, must be b's first one, "
        "`kj`."),
    *_MATMUL_SLIPS])

_LIN_SHAPES = ((1, 1, 1), (1, 3, 2), (2, 3, 1), (2, 2, 2), (4, 2, 3), (3, 3, 3), (5, 4, 2),
               (2, 5, 5))

def _lin_cases(g):
    return [Case(("x", "w", "b"), tuple(_randn(g, *s, dtype=dtype) for s in
                                        ((n, n_in), (n_in, n_out), (n_out,))))
            for n, n_in, n_out in _LIN_SHAPES for dtype in _DTYPES]

_LIN_SLIPS = [
    (lambda x, w, b: x @ w, "The bias is missing: add `b` after the product, `x @ w + b`."),
    (lambda x, w, b: x @ w.T + b,
        "`w` is transposed: in the book's layout `w` has shape (n_in, n_out), so the product is `x "
        "@ w`, with no `.T` (PyTorch's `nn.Linear` stores the transpose)."),
    (lambda x, w, b: x @ w + b[:, None],
        "`b[:, None]` is a column, shape (n_out, 1), which broadcasts against the batch: add `b` "
        "as it is, shape (n_out,), and it lines up with the columns."),
    (lambda x, w, b: x @ w + b.mean(),
        "One number is added to every output: each output j gets its own bias `b[j]`."),
]

register("lin", "init", _lin_cases, slips=_LIN_SLIPS)

def _relu_cases(g):
    cases = [Case(("x",), (_with_zeros(g, _randn(g, *shape, dtype=dtype)),))
             for shape in ((1,), (5,), (3, 4), (2, 3, 2), (1, 1, 7)) for dtype in _DTYPES]
    extremes = torch.tensor([-1e30, -1e-30, 0.0, -0.0, 1e-30, 1e30])   # tiny, huge, signed zeros
    cases.append(Case(("x",), (extremes,)))
    return cases

_RELU_SLIPS = [
    (lambda x: torch.where(x > 0, x, 0.01 * x),
        "Negative inputs leak through (times 0.01): that is *leaky* ReLU. ReLU sets them to "
        "exactly zero."),
    (lambda x: x.clamp_max(0),
        "The mask is inverted: ReLU keeps the positive entries and zeroes the negative ones, not "
        "the other way round."),
    (lambda x: x.abs(),
        "Negative inputs come out positive: ReLU replaces them with zero, it does not flip their "
        "sign."),
]

register("relu", "init", _relu_cases, slips=_RELU_SLIPS)

def _mse_cases(g):
    cases = []
    for n in (1, 2, 3, 5, 8):
        for dtype in _DTYPES:
            pair = (_randn(g, n, 1, dtype=dtype), _randn(g, n, dtype=dtype))
            cases.append(Case(("output", "targ"), pair))
        cases.append(Case(("output", "targ"), (_randn(g, n), _randn(g, n))))
    return cases

def _mse_column(output, targ): return ((output - targ) ** 2).mean()
def _squared_errors(output, targ): return (output.reshape(-1) - targ.reshape(-1)) ** 2
def _mse_sum(output, targ): return _squared_errors(output, targ).sum()
def _mse_n_minus_one(output, targ): return _squared_errors(output, targ).sum() / (targ.shape[0] - 1)
def _rmse(output, targ): return _squared_errors(output, targ).mean().sqrt()
def _mse_number(output, targ): return _squared_errors(output, targ).mean().item()
def _mse_float64(output, targ): return _squared_errors(output, targ).double().mean()
def _mae(output, targ): return (output.reshape(-1) - targ.reshape(-1)).abs().mean()

_MSE_SLIPS = [
    (_mse_column,
        "`output` (n, 1) minus `targ` (n,) broadcasts to an (n, n) table of every prediction "
        "against every target: make them one shape first, e.g. `output.squeeze(-1) - targ`."),
    (_mse_sum,
        "The squared errors are summed but not divided by their count: the *mean* divides by n, "
        "the number of samples."),
    (_mse_n_minus_one,
        "The loss is divided by the wrong count: n - 1 is the sample variance's correction; the "
        "mean squared error divides by n."),
    (_mse_number,
        "The loss is a Python number: return the tensor (no `.item()` or `float(...)`), so that it "
        "keeps its dtype and can be backpropagated."),
    (_mse_float64,
        "The loss is float64 for float32 inputs: compute in the inputs' dtype (no `.double()`, no "
        "float64 constants)."),
    (_rmse, "That is the root of the mean squared error: leave out the square root."),
    (_mae, "That is the mean *absolute* error: square the differences instead."),
]

register("mse", "init", _mse_cases, slips=_MSE_SLIPS)

_INIT_SHAPES = ((1, 1), (3, 5), (5, 3), (32, 256), (256, 32))   # the last two: 8,192 draws each

def _init_cases(g):
    cases = []
    for n_in, n_out in _INIT_SHAPES:
        for kwargs in ({}, {"dtype": torch.float64}):
            seed = int(torch.randint(0, 2 ** 31, (1,), generator=g))
            cases.append(Case(("n_in", "n_out", "seed"), (n_in, n_out, seed), kwargs=kwargs))
    return cases

def _init_run(fn, case):
    "Draw weights twice with one seed: shape, dtype, mean and std, and whether the draws repeat."
    n_in, n_out, seed = case.args
    def draw():
        generator = torch.Generator().manual_seed(seed)
        return call(fn, n_in, n_out, generator=generator, **case.kwargs)
    w = draw()
    if not isinstance(w, torch.Tensor): return {"the result": w}
    out = {"shape": tuple(w.shape), "dtype": w.dtype}
    if w.numel() > 1000:
        values = w.detach().double()
        out.update({"std": values.std().item(), "mean": values.mean().item()})
    out["the same draw again, from a generator seeded alike"] = bool(torch.equal(draw(), w))
    return out

def _init_expected(std_of_fan_in):
    "What `_init_run` expects of weights N(0, std_of_fan_in(n_in)^2): margins of 8 standard errors."
    def expected(case):
        n_in, n_out, _ = case.args
        out = {"shape": (n_in, n_out), "dtype": case.kwargs.get("dtype", torch.get_default_dtype())}
        n, std = n_in * n_out, std_of_fan_in(n_in)
        if n > 1000:
            out["std"] = Stat(std, 8 * std / math.sqrt(2 * (n - 1)))   # std's standard error
            out["mean"] = Stat(0.0, 8 * std / math.sqrt(n))            # the mean's
        out["the same draw again, from a generator seeded alike"] = True
        return out
    return expected

def _normal_init(std_of_fan_in, *, fan=0, uniform=False, use_generator=True, use_dtype=True):
    "A slip in initialisation: the wrong fan or formula, uniform draws, or an argument ignored."
    def init(n_in, n_out, *, dtype=None, device=None, generator=None):
        draw = torch.rand if uniform else torch.randn
        w = draw(n_in, n_out, dtype=dtype if use_dtype else None,
                 generator=generator if use_generator else None)
        return w * std_of_fan_in((n_in, n_out)[fan])
    return init

_xavier, _kaiming = (lambda n: 1 / math.sqrt(n)), (lambda n: math.sqrt(2 / n))
def _init_slips(std_of_fan_in):
    "Slips common to both initialisations, for the one whose std is `std_of_fan_in(n_in)`."
    return [
        (_normal_init(lambda n: 1.0),
         "The weights are not scaled: `torch.randn` has std 1; multiply by the std that "
             "depends on n_in."),
        (_normal_init(lambda n: 1 / n),
            "The std is 1/n_in: the *variance* is 1/n_in (Xavier) or 2/n_in (Kaiming), so the std "
            "is its square root."),
        (_normal_init(std_of_fan_in, uniform=True),
            "`torch.rand` draws from [0, 1), so the weights have a positive mean: use "
            "`torch.randn`, the standard normal."),
        (_normal_init(std_of_fan_in, use_generator=False),
            "The generator is ignored, so a seeded call cannot be repeated: pass "
            "`generator=generator` to `torch.randn`."),
        (_normal_init(std_of_fan_in, use_dtype=False),
            "The dtype argument is ignored: pass `dtype=dtype` to `torch.randn`."),
    ]

register("xavier_init", "init", _init_cases, run=_init_run, expected=_init_expected(_xavier),
         slips=[
    (_normal_init(_kaiming),
        "That is Kaiming's scale, sqrt(2 / n_in), for a layer followed by ReLU; Xavier's, for a "
        "layer without one, is 1 / sqrt(n_in), smaller by sqrt(2)."),
    (_normal_init(_xavier, fan=1),
        "The std uses n_out: it depends on the layer's fan-in, n_in, the number of terms each "
        "output sums."),
    *_init_slips(_xavier)])

register("kaiming_init", "init", _init_cases, run=_init_run, expected=_init_expected(_kaiming),
         slips=[
    (_normal_init(_xavier),
        "That is Xavier's scale, 1 / sqrt(n_in); after a ReLU, which zeroes half the activations, "
        "Kaiming's std is sqrt(2 / n_in), larger by sqrt(2)."),
    (_normal_init(_kaiming, fan=1),
        "The std uses n_out: it depends on the layer's fan-in, n_in, the number of terms each "
        "output sums."),
    (_normal_init(lambda n: 2 / math.sqrt(n)),
        "The std is 2 / sqrt(n_in): the factor 2 belongs to the variance, 2 / n_in, so the std is "
        "sqrt(2 / n_in)."),
    *_init_slips(_kaiming)])

def _mse_grad_cases(g):
    cases = [Case(("inp", "targ"), (o, t)) for case in _mse_cases(g) for o, t in [case.args]]
    cases.append(Case(("inp", "targ"), (_randn(g, 4, 1), _randn(g, 4, 1))))   # a target column
    return cases

def _mse_grad_slip(formula):
    "A slip in `mse_grad`: `formula(pred, target, n)` on vectors, into `inp.g` in inp's shape."
    def mse_grad(inp, targ):
        pred, target = inp.reshape(-1), targ.reshape(-1)
        inp.g = formula(pred, target, pred.shape[0]).reshape(inp.shape)
    return mse_grad

def _mse_grad_column(inp, targ): inp.g = 2 * (inp - targ) / targ.shape[0]
def _mse_grad_vector(inp, targ): inp.g = 2 * (inp.reshape(-1) - targ.reshape(-1)) / targ.shape[0]

_MSE_GRAD_SLIPS = [
    (_mse_grad_column,
        "`inp` (n, 1) minus `targ` (n,) broadcasts to (n, n): make them one shape first, e.g. "
        "`inp.squeeze(-1) - targ`, then give the gradient inp's shape."),
    (_mse_grad_vector,
        "`inp.g` must have inp's own shape, (n, 1) for a column: reshape the gradient with "
        "`.reshape(inp.shape)`."),
    (_mse_grad_slip(lambda p, t, n: 2 * (p - t)),
        "The gradient is not divided by n: the loss is a mean over n samples, so each sample's "
        "share is 2 (inp - targ) / n."),
    (_mse_grad_slip(lambda p, t, n: (p - t) / n),
        "The factor 2 is missing: the derivative of (inp - targ)^2 is 2 (inp - targ)."),
    (_mse_grad_slip(lambda p, t, n: 2 * (t - p) / n),
        "The sign is flipped: the derivative with respect to the prediction is 2 (inp - targ) / n, "
        "positive when the prediction is too high."),
    (_mse_grad_slip(lambda p, t, n: 2 * (p - t) / n ** 2),
        "The loss is divided by the wrong count: divide by n once, the number of samples."),
]

register("mse_grad", "backprop", _mse_grad_cases, run=grads("inp"), slips=_MSE_GRAD_SLIPS)

def _relu_grad_cases(g):
    cases = []
    for shape in ((1,), (4,), (3, 5), (2, 3, 2), (1, 6)):
        for dtype in _DTYPES:
            inp = _with_zeros(g, _randn(g, *shape, dtype=dtype))
            upstream = {"out": _randn(g, *shape, dtype=dtype)}
            cases.append(Case(("inp", "out"), (inp, inp.clamp_min(0)), upstream=upstream))
    return cases

def _relu_grad_slip(mask):
    def relu_grad(inp, out): inp.g = out.g * mask(inp, out)
    return relu_grad

_HINT_MASK_INVERTED = ("The mask is inverted: the gradient passes where the input was *positive* "
                       "(`inp > 0`) and is zero elsewhere.")
_HINT_KINK = ("At exactly zero the gradient should be 0: use `inp > 0`, not `inp >= 0` (the "
              "book's and PyTorch's choice at the kink).")
_RELU_GRAD_SLIPS = [
    (_relu_grad_slip(lambda inp, out: inp < 0), _HINT_MASK_INVERTED),
    (_relu_grad_slip(lambda inp, out: inp <= 0), _HINT_MASK_INVERTED),
    (_relu_grad_slip(lambda inp, out: torch.where(inp > 0, 1.0, 0.01).to(inp.dtype)),
        "The gradient leaks through negative inputs (0.01): that is leaky ReLU's. ReLU's slope is "
        "exactly 0 there."),
    (_relu_grad_slip(lambda inp, out: inp >= 0), _HINT_KINK),
    (_relu_grad_slip(lambda inp, out: out.g > 0),
        "The mask is taken from `out.g`, the upstream gradient: it must come from the input, `inp "
        "> 0`."),
    (lambda inp, out: setattr(inp, "g", (inp > 0).to(inp.dtype)),
        "Only the mask is stored: multiply it by the upstream gradient, `out.g * (inp > 0)`."),
    (lambda inp, out: setattr(inp, "g", out.g.clone()),
        "The upstream gradient passes everywhere: zero it where the input was negative, `out.g * "
        "(inp > 0)`."),
]

register("relu_grad", "backprop", _relu_grad_cases, run=grads("inp"), slips=_RELU_GRAD_SLIPS)

def _lin_grad_cases(g):
    cases = []
    for n, n_in, n_out in _LIN_SHAPES:
        for dtype in _DTYPES:
            x, w, b = (_randn(g, *s, dtype=dtype) for s in ((n, n_in), (n_in, n_out), (n_out,)))
            upstream = {"out": _randn(g, n, n_out, dtype=dtype)}
            cases.append(Case(("inp", "out", "w", "b"), (x, x @ w + b, w, b), upstream=upstream))
    return cases

def _lin_grad_slip(inp_g=lambda i, g, w: g @ w.T, w_g=lambda i, g, w: i.T @ g,
                   b_g=lambda g: g.sum(0)):
    "`lin_grad` with one of its three formulas replaced (None: that gradient is not set)."
    def lin_grad(inp, out, w, b):
        found = (inp_g and inp_g(inp, out.g, w), w_g and w_g(inp, out.g, w), b_g and b_g(out.g))
        for t, grad in zip((inp, w, b), found):
            if grad is not None: t.g = grad
    return lin_grad

_LIN_GRAD_SLIPS = [
    (_lin_grad_slip(b_g=lambda g: g.mean(0)),
        "b.g is averaged over the batch: every sample adds its share to the bias's gradient, so "
        "sum it, `out.g.sum(0)`."),
    (_lin_grad_slip(b_g=lambda g: g.sum(1)),
        "b.g is summed over the wrong dimension: sum over the batch (dim 0), which leaves one "
        "value per output."),
    (_lin_grad_slip(b_g=None),
        "b.g was never set: the bias's gradient is the upstream gradient summed over the batch."),
    (_lin_grad_slip(w_g=lambda i, g, w: g.T @ i),
        "w.g is transposed: it must have w's shape (n_in, n_out), which `inp.T @ out.g` has."),
    (_lin_grad_slip(w_g=lambda i, g, w: i.T @ g / g.shape[0]),
        "w.g is averaged over the batch: the samples' contributions add up, `inp.T @ out.g`, with "
        "no division (the loss already divided by n)."),
    (_lin_grad_slip(inp_g=lambda i, g, w: g @ w),
        "inp.g is missing a transpose: `out.g` (n, n_out) meets `w` (n_in, n_out) along n_out, so "
        "it is `out.g @ w.T`."),
    (_lin_grad_slip(inp_g=None),
        "inp.g was never set: the layer before needs it, so set it to `out.g @ w.T`."),
]

register("lin_grad", "backprop", _lin_grad_cases, run=grads("inp", "w", "b"), slips=_LIN_GRAD_SLIPS)

def _net_cases(g):
    cases = []
    for n, n_in, n_hidden in ((1, 1, 1), (1, 3, 2), (2, 1, 3), (4, 3, 2), (3, 5, 4), (6, 4, 5)):
        for dtype in _DTYPES:
            shapes = ((n, n_in), (n,), (n_in, n_hidden), (n_hidden,), (n_hidden, 1), (1,))
            args = [_randn(g, *s, dtype=dtype) for s in shapes]
            args[0] = args[0] * 2   # wider inputs: most hidden units active for some samples
            cases.append(Case(("inp", "targ", "w1", "b1", "w2", "b2"), tuple(args)))
    return cases

def _net_run(fn, case):
    "Call `fn` twice on the same tensors (as training does): the loss and each `.g` after that."
    args = case.fresh()
    call(fn, *args)
    loss = call(fn, *args)
    grads = {f"{name}.g": getattr(t, "g", None) for name, t in zip(case.names, args)
             if name != "targ"}
    return {"loss": loss, **grads, **case.unchanged(args)}

def _accumulating_forward_and_backward(inp, targ, w1, b1, w2, b2):
    lin_grad, relu_grad, mse_grad = book("backprop", "lin_grad", "relu_grad", "mse_grad")
    l1 = inp @ w1 + b1; l2 = l1.clamp_min(0); out = l2 @ w2 + b2
    loss = ((out.squeeze(-1) - targ) ** 2).mean()
    for t in (l1, l2, out): t.g = None
    mse_grad(out, targ); lin_grad(l2, out, w2, b2); relu_grad(l1, l2); lin_grad(inp, l1, w1, b1)
    return loss

def _fab_no_n(inp, targ, w1, b1, w2, b2):
    from foundations.core import zero_grads
    lin_grad, relu_grad = book("backprop", "lin_grad", "relu_grad")
    l1 = inp @ w1 + b1; l2 = l1.clamp_min(0); out = l2 @ w2 + b2
    zero_grads(inp, w1, b1, w2, b2)
    out.g = 2 * (out.squeeze(-1) - targ).unsqueeze(-1)
    lin_grad(l2, out, w2, b2); relu_grad(l1, l2); lin_grad(inp, l1, w1, b1)
    return ((out.squeeze(-1) - targ) ** 2).mean()

register("forward_and_backward", "backprop", _net_cases, run=_net_run, slips=[
    (_fab_no_n,
        "The loss's gradient is not divided by n: the loss is a mean, so d loss / d out is 2 (out "
        "- targ) / n."),
    (_accumulating_forward_and_backward,
        "The gradients are twice what they should be after a second call: gradient functions *add* "
        "into `.g`, so clear the five tensors' `.g` (`zero_grads`) before the backward pass."),
])

def _layer_cases(g, make):
    "Cases for a layer class: the cases of `make`, with a random gradient for the layer's output."
    cases = []
    for case in make(g):
        upstream = case.upstream.get("out")
        names = [n for n in case.names if n != "out"]
        args = [a for n, a in zip(case.names, case.args) if n != "out"]
        extra = {"out.g": upstream} if upstream is not None else {}
        cases.append(Case(tuple(names), tuple(args), extra=extra))
    return cases

def _layer_run(grads):
    "Runner of a layer class: build it, call it, set the upstream gradient, call `backward()`."
    def run(cls, case):
        args = case.fresh()
        params = {n: a for n, a in zip(case.names, args) if n in ("w", "b")}
        inputs = [a for n, a in zip(case.names, args) if n not in params]
        layer = call(cls, *params.values())
        out = call(layer, *inputs)
        result = {f"layer({', '.join(n for n in case.names if n not in params)})":
                  out.detach().clone() if isinstance(out, torch.Tensor) else out}
        if "out.g" in case.extra: out.g = case.extra["out.g"].clone()
        call(layer.backward)
        grads_set = {f"{n}.g": getattr(args[case.names.index(n)], "g", None) for n in grads}
        return {**result, **grads_set, **case.unchanged(args)}
    return run

def _layer_slips(make_class, forward_slips, grad_slips, forward, grad):
    "Slips for a layer class: each slip of its forward function, then each of its gradient's."
    def slips():
        return ([(make_class(f, grad), hint) for f, hint in forward_slips] +
                [(make_class(forward, g), hint) for g, hint in grad_slips])
    return slips

def _lin_class(forward, grad):
    (LayerFunction,) = book("modules", "LayerFunction")
    class Lin(LayerFunction):
        def __init__(self, w, b): super().__init__(); self.w, self.b = w, b
        def forward(self, inp): return forward(inp, self.w, self.b)
        def bwd(self, out, inp): grad(inp, out, self.w, self.b)
    return Lin

def _function_class(forward, grad):
    "A layer without parameters (ReLU, a loss): forward(*inputs), bwd(out, *inputs)."
    (LayerFunction,) = book("modules", "LayerFunction")
    class Layer(LayerFunction):
        def forward(self, *inputs): return forward(*inputs)
        def bwd(self, out, *inputs): grad(*inputs, out) if len(inputs) == 1 else grad(*inputs)
    return Layer

def _book_grad(name): return lambda *args: book("backprop", name)[0](*args)

register("Lin", "modules", lambda g: _layer_cases(g, _lin_grad_cases),
         run=_layer_run(("inp", "w", "b")),
         slips=_layer_slips(_lin_class, _LIN_SLIPS, _LIN_GRAD_SLIPS, lambda x, w, b: x @ w + b,
                            _book_grad("lin_grad")))
register("Relu", "modules", lambda g: _layer_cases(g, _relu_grad_cases), run=_layer_run(("inp",)),
         slips=_layer_slips(_function_class, _RELU_SLIPS, _RELU_GRAD_SLIPS,
                            lambda x: x.clamp_min(0), _book_grad("relu_grad")))
register("Mse", "modules", lambda g: _layer_cases(g, _mse_grad_cases), run=_layer_run(("inp",)),
         slips=lambda: _layer_slips(_function_class, _MSE_SLIPS, _MSE_GRAD_SLIPS,
                                    *book("init", "mse"), *book("backprop", "mse_grad"))())

def _my_relu_cases(g):
    return [Case(("x",), case.args[:1], extra={"grad": case.upstream["out"]})
            for case in _relu_grad_cases(g)]

def _my_relu_run(cls, case):
    "Apply the autograd function, then ask autograd for the input's gradient."
    (x,) = case.fresh()
    x.requires_grad_()
    y = call(cls.apply, x)
    if not isinstance(y, torch.Tensor): raise Unusable(
        f"MyRelu.apply(x) returned {type(y).__name__}, not a tensor")
    out = {"MyRelu.apply(x)": y.detach().clone(), "input x": x.detach().clone()}
    call(y.backward, case.extra["grad"])
    return {**out, "x.grad": x.grad}

def _autograd_relu(forward, backward):
    class MyRelu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp): ctx.save_for_backward(inp); return forward(inp)
        @staticmethod
        def backward(ctx, grad_output): inp, = ctx.saved_tensors; return backward(inp, grad_output)
    return MyRelu

register("MyRelu", "modules", _my_relu_cases, run=_my_relu_run, slips=[
    *[(_autograd_relu(f, lambda inp, g: g * (inp > 0)), hint) for f, hint in _RELU_SLIPS],
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp < 0)), _HINT_MASK_INVERTED),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp <= 0)), _HINT_MASK_INVERTED),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp >= 0)), _HINT_KINK),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: (inp > 0).to(g.dtype)),
        "backward returns only the mask: multiply it by `grad_output`, the gradient arriving from "
        "above."),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g),
        "backward passes `grad_output` everywhere: zero it where the input was negative, "
        "`grad_output * (inp > 0)`."),
])

def _linear_layer_cases(g):
    cases = []
    for n_in, n_out, n in ((1, 1, 1), (3, 2, 4), (2, 5, 1), (32, 256, 3)):   # the last: 8,192
        for kwargs in ({}, {"dtype": torch.float64}, {"init": _fixed_init}):
            seed = int(torch.randint(0, 2 ** 31, (1,), generator=g))
            x = _randn(g, n, n_in, dtype=kwargs.get("dtype", torch.get_default_dtype()))
            cases.append(Case(("n_in", "n_out", "seed"), (n_in, n_out, seed), kwargs=kwargs,
                              extra={"x": x}))
    return cases

def _fixed_init(n_in, n_out, *, dtype=None, device=None, generator=None):
    "An `init` for LinearLayer whose weights are known: 0, 0.1, 0.2, ... in an (n_in, n_out) grid."
    return torch.arange(n_in * n_out, dtype=dtype, device=device).reshape(n_in, n_out) / 10

def _linear_layer_run(cls, case):
    "Build the layer, look at its parameters, then check its output against its own parameters."
    n_in, n_out, seed = case.args
    layer = call(cls, n_in, n_out, generator=torch.Generator().manual_seed(seed), **case.kwargs)
    params = dict(layer.named_parameters())
    out = {"parameter names": sorted(params)}
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    if not (isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor)):
        return {**out, "weight": weight, "bias": bias}
    out.update({"weight's shape": tuple(weight.shape), "weight's dtype": weight.dtype,
                "bias": bias.detach().clone()})
    if "init" in case.kwargs: out["weight"] = weight.detach().clone()
    if weight.numel() > 1000 and "init" not in case.kwargs:
        out["weight's std"] = weight.detach().double().std().item()
    if tuple(weight.shape) == (n_out, n_in) and tuple(bias.shape) == (n_out,):
        with torch.no_grad():
            bias.copy_(torch.linspace(-1, 1, n_out))   # a bias that is not zero: is it added?
            x = case.extra["x"]
            out["layer(x) - (x @ weight.T + bias)"] = call(layer, x) - (x @ weight.T + bias)
            out["input x"] = x.clone()
    return out

def _linear_layer_expected(case):
    n_in, n_out, _ = case.args
    dtype = case.kwargs.get("dtype", torch.get_default_dtype())
    out = {"parameter names": ["bias", "weight"], "weight's shape": (n_out, n_in),
           "weight's dtype": dtype, "bias": torch.zeros(n_out, dtype=dtype)}
    if "init" in case.kwargs: out["weight"] = _fixed_init(n_in, n_out, dtype=dtype).t()
    elif n_in * n_out > 1000:
        std = math.sqrt(2 / n_in)
        out["weight's std"] = Stat(std, 8 * std / math.sqrt(2 * (n_in * n_out - 1)))
    zeros = torch.zeros(case.extra["x"].shape[0], n_out, dtype=dtype)
    out["layer(x) - (x @ weight.T + bias)"] = zeros
    return out

def _linear_layer_slip(std_of_fan_in=_kaiming, transpose=True, zero_bias=True, parameters=True,
                       use_init=True):
    "A slip in `LinearLayer`: the weights' scale or layout, a random bias, plain tensors, no init."
    def make(n_in, n_out, *, dtype=None, device=None, generator=None, init=None):
        nn = torch.nn
        layer = nn.Module()
        w = torch.randn(n_in, n_out, dtype=dtype, generator=generator) * std_of_fan_in(n_in)
        if init is not None and use_init: w = init(n_in, n_out, dtype=dtype, generator=generator)
        w = w.t().contiguous() if transpose else w
        b = (torch.zeros(n_out, dtype=w.dtype) if zero_bias
             else torch.randn(n_out, dtype=w.dtype, generator=generator))
        wrap = nn.Parameter if parameters else (lambda t: t)
        layer.weight, layer.bias = wrap(w), wrap(b)
        layer.forward = lambda x: x @ (layer.weight.t() if transpose else layer.weight) + layer.bias
        return layer
    return make

register("LinearLayer", "modules", _linear_layer_cases, run=_linear_layer_run,
         expected=_linear_layer_expected, slips=[
    (_linear_layer_slip(transpose=False),
        "weight has shape (n_in, n_out): like `nn.Linear`, LinearLayer stores it transposed, "
        "(n_out, n_in), and computes `x @ weight.t() + bias`."),
    (_linear_layer_slip(_xavier),
        "The weights have Xavier's scale, 1 / sqrt(n_in); the layer is meant to be followed by "
        "ReLU, so it needs Kaiming's, sqrt(2 / n_in)."),
    (_linear_layer_slip(zero_bias=False),
        "The bias starts random: start it at zero, `torch.zeros(n_out)`; the random weights "
        "already break the symmetry."),
    (_linear_layer_slip(use_init=False),
        "The `init` argument is ignored: draw the weights with `init(n_in, n_out, ...)`, the "
        "function the caller passed."),
    (_linear_layer_slip(parameters=False),
        "weight and bias are plain tensors, so `parameters()` does not see them and an optimiser "
        "would never update them: wrap them in `nn.Parameter`."),
])

def _cross_entropy_cases(g):
    cases = []
    for n, n_classes in ((1, 2), (1, 5), (3, 2), (4, 3), (6, 10), (2, 1)):
        for dtype in _DTYPES:
            logits = _randn(g, n, n_classes, dtype=dtype) * 3
            targ = torch.randint(0, n_classes, (n,), generator=g)
            cases.append(Case(("logits", "targ"), (logits, targ)))
    large = _randn(g, 3, 4, dtype=torch.float32) * 20 + 100   # exp(100) overflows float32
    cases.append(Case(("logits", "targ"), (large, torch.randint(0, 4, (3,), generator=g))))
    return cases

def _log_softmax_naive(x): return x - x.exp().sum(-1, keepdim=True).log()

_CROSS_ENTROPY_SLIPS = [
    (lambda x, t: -_log_softmax_naive(x)[range(len(t)), t].mean(),
        "exp() overflows for large scores (exp(100) is inf in float32): subtract each row's "
        "maximum first, the log-sum-exp trick."),
    (lambda x, t: -(x.exp() / x.exp().sum(-1, keepdim=True))[range(len(t)), t].log().mean(),
        "exp() overflows for large scores (exp(100) is inf in float32): subtract each row's "
        "maximum first, the log-sum-exp trick."),
    (lambda x, t: x.log_softmax(-1)[range(len(t)), t].mean(),
        "The minus sign is missing: the loss is the *negative* log-probability of the correct "
        "class."),
    (lambda x, t: -x.log_softmax(-1)[range(len(t)), t].sum(),
        "The loss is summed over the batch: take the mean, dividing by n."),
    (lambda x, t: -x.log_softmax(0)[range(len(t)), t].mean(),
        "softmax runs over the wrong dimension: each *row* (one sample's scores, dim=-1) must sum "
        "to 1."),
    (lambda x, t: -x.log_softmax(-1)[:, t].mean(),
        "`logits[:, targ]` picks an (n, n) block, every row at every target: pair row i with its "
        "own class, `[range(n), targ]`."),
    (lambda x, t: -x.softmax(-1)[range(len(t)), t].mean(),
        "That averages probabilities: the loss is the negative *log*-probability of the correct "
        "class."),
]

register("cross_entropy", "training", _cross_entropy_cases, slips=_CROSS_ENTROPY_SLIPS)

def _cross_entropy_grad_slip(formula):
    def cross_entropy_grad(inp, targ):
        one_hot = torch.nn.functional.one_hot(targ, inp.shape[1]).to(inp.dtype)
        inp.g = formula(inp, one_hot, inp.shape[0])
    return cross_entropy_grad

def _renamed(make, *names): return lambda g: [Case(names, c.args) for c in make(g)]

register("cross_entropy_grad", "training", _renamed(_cross_entropy_cases, "inp", "targ"),
         run=grads("inp"), slips=[
    (_cross_entropy_grad_slip(lambda x, y, n: (x.exp() / x.exp().sum(-1, keepdim=True) - y) / n),
        "exp() overflows for large scores: compute softmax on each row minus its maximum."),
    (_cross_entropy_grad_slip(lambda x, y, n: x.softmax(-1) - y),
        "The gradient is not divided by n: the loss is a mean over the batch, so each row gets "
        "(softmax - one_hot) / n."),
    (_cross_entropy_grad_slip(lambda x, y, n: (y - x.softmax(-1)) / n),
        "The sign is flipped: the gradient is (softmax(inp) - one_hot(targ)) / n, positive for the "
        "wrong classes."),
    (_cross_entropy_grad_slip(lambda x, y, n: x.softmax(-1) / n),
        "The one-hot targets are missing: subtract 1 at each row's correct class, (softmax - "
        "one_hot) / n."),
    (_cross_entropy_grad_slip(lambda x, y, n: (x.softmax(0) - y) / n),
        "softmax runs over the wrong dimension: normalise each row (dim=-1), one sample's scores."),
])

_CONV_SHAPES = (  # N, C_in, H, W, C_out, kH, kW, stride, padding, bias
    (1, 1, 1, 1, 1, 1, 1, 1, 0, True), (1, 1, 3, 3, 1, 2, 2, 1, 0, False),
    (1, 1, 4, 5, 2, 2, 3, 1, 0, True), (2, 2, 5, 4, 3, 3, 2, 1, 1, True),
    (1, 3, 6, 7, 2, 3, 3, 2, 1, True), (2, 1, 5, 5, 1, 3, 3, (2, 1), (0, 1), True),
    (3, 2, 4, 4, 4, 1, 1, 1, 0, False), (2, 2, 6, 5, 3, 3, 3, 2, 0, True))

def _conv_cases(g):
    cases = []
    for n, c_in, h, w, c_out, kh, kw, stride, padding, bias in _CONV_SHAPES:
        for dtype in _DTYPES:
            x = _randn(g, n, c_in, h, w, dtype=dtype)
            weight = _randn(g, c_out, c_in, kh, kw, dtype=dtype)
            b = _randn(g, c_out, dtype=dtype) if bias else None
            cases.append(Case(("x", "weight", "bias", "stride", "padding"),
                              (x, weight, b, stride, padding)))
    return cases

def _conv_slip(change):
    def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
        return torch.nn.functional.conv2d(x, *change(weight, bias), stride=stride, padding=padding)
    return conv2d_unfold

def _conv_no_stride(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight, bias, padding=padding)
def _conv_no_padding(x, weight, bias=None, stride=1, padding=0):
    return torch.nn.functional.conv2d(x, weight, bias, stride=stride)
def _conv_hw_swapped(x, weight, bias=None, stride=1, padding=0):
    out = torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=padding)
    return out.flatten(2).reshape(out.shape[0], out.shape[1], out.shape[3], out.shape[2])

register("conv2d_unfold", "conv", _conv_cases, slips=[
    (_conv_slip(lambda w, b: (w, None)),
        "The bias is missing: add one value per output channel, `out + bias[:, None]` on the (N, "
        "C_out, L) product."),
    (_conv_slip(lambda w, b: (w.flip(-2, -1), b)),
        "The kernel is flipped: `F.conv2d` (like every deep-learning convolution) does not flip "
        "it; it is a cross-correlation."),
    (_conv_no_stride,
        "The stride is ignored: pass it to the unfold, and compute H_out = (H + 2 pH - kH) // sH + "
        "1."),
    (_conv_no_padding,
        "The padding is ignored: pass it to the unfold (zeros on each side), and count it in H_out "
        "and W_out."),
    (_conv_hw_swapped,
        "The output's height and width are swapped in the final reshape: it is (N, C_out, H_out, "
        "W_out)."),
])

def _unbroadcast_cases(g):
    pairs = [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), (2, 1)), ((5,), (1,)),
             ((2, 3), (1, 1)), ((4, 2, 3), (2, 1)), ((4, 2, 3), ()), ((2, 1, 3), (1, 1, 3)),
             ((3, 4, 2), (4, 1))]
    return [Case(("grad", "shape"), (_randn(g, *grad_shape, dtype=dtype), shape))
            for grad_shape, shape in pairs for dtype in _DTYPES]

def _unbroadcast_reduce(reduce, stretched=True):
    "A slip in `unbroadcast`: `reduce` (sum or mean) the added dims, and the stretched ones too?"
    def unbroadcast(grad, shape):
        shape = tuple(shape)
        extra = grad.ndim - len(shape)
        out = reduce(grad, list(range(extra)), False) if extra else grad
        dims = [i for i, n in enumerate(shape) if n == 1 and out.shape[i] != 1]
        return reduce(out, dims, True) if dims and stretched else out
    return unbroadcast

register("unbroadcast", "autograd", _unbroadcast_cases, slips=[
    (_unbroadcast_reduce(lambda g, dims, keep: g.mean(dims, keepdim=keep)),
        "Every copy of a broadcast entry used it, so its gradient is the *sum* of the copies' "
        "gradients, not their mean."),
    (_unbroadcast_reduce(lambda g, dims, keep: g.sum(dims, keepdim=keep), stretched=False),
        "Only the added leading dimensions are summed: a size-1 dimension that broadcasting "
        "stretched must be summed too (with `keepdim=True`), so the result has `shape`."),
])

def _autograd_loss_run(fn, case):
    "Wrap the scores in the chapter's `Tensor`, take `fn`'s loss, backpropagate: loss, `.grad`."
    (Tensor,) = book("autograd", "Tensor")
    logits, targ = case.fresh()
    scores = Tensor(logits, requires_grad=True)
    loss = call(fn, scores, targ)
    if not isinstance(loss, Tensor):
        kind = f"{type(loss).__module__.split('.')[0]}.{type(loss).__name__}"
        raise Unusable(f"the loss must be the chapter's Tensor, with a graph back to the logits; "
                       f"it is a {kind}: build it from Tensor operations on `logits`")
    if not loss.requires_grad:
        raise Unusable("the loss is a Tensor with no graph back to the logits (requires_grad is "
                       "False): build it from Tensor operations on `logits`, not from `.data`")
    out = {"loss": loss.data.clone()}
    call(loss.backward)
    return {**out, "logits.grad": scores.grad, "input logits": logits}

def _autograd_ce_slip(formula):
    def cross_entropy(logits, targets):
        one_hot = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.data.dtype)
        return formula(logits, one_hot, logits.shape[0])
    return cross_entropy

register("cross_entropy", "autograd", _renamed(_cross_entropy_cases, "logits", "targets"),
         run=_autograd_loss_run, key="autograd.cross_entropy", slips=[
    (_autograd_ce_slip(lambda x, y, n: -(x.log_softmax(-1) * y).sum()),
        "The loss is summed over the batch: divide by n (or take the mean), and the gradient "
        "shrinks with it."),
    (_autograd_ce_slip(lambda x, y, n: (x.log_softmax(-1) * y).sum() / n),
        "The minus sign is missing: the loss is the *negative* log-probability of the correct "
        "class."),
    (_autograd_ce_slip(lambda x, y, n: -((x - x.exp().sum(-1, keepdim=True).log()) * y).sum() / n),
        "exp() overflows for large scores: use the Tensor's `log_softmax`, which subtracts each "
        "row's maximum first."),
])

# %% chapter 9: the engine's core, through the public make_node
def _engine(*names): return book("autograd", *names)

class _Graph:
    "A small graph to build fresh for each call: `build()` gives (root, {tensor: name})."
    def __init__(self, label, build): self.label, self.build = label, build
    def __repr__(self): return self.label

def _leaves(g, dtype, *shapes):
    (Tensor,) = _engine("Tensor")
    return [Tensor(_randn(g, *s, dtype=dtype), requires_grad=True) for s in shapes]

def _graphs(g):
    "Graphs with a reused node, a constant, a leaf without grad, and a long chain."
    def chain(n):
        def build():
            (x,) = _leaves(torch.Generator().manual_seed(n), torch.float64, (2,))
            names, y = {x: "x"}, x
            for i in range(n): y = y * 1.1; names[y] = f"y{i}"
            return y.sum(), names
        return _Graph(f"a chain of {n} products", build)
    def diamond():
        x, w = _leaves(torch.Generator().manual_seed(1), torch.float64, (3,), (3,))
        (Tensor,) = _engine("Tensor")
        c = Tensor(torch.ones(3, dtype=torch.float64))   # needs no gradient
        a = x * w; b = a * x; bc = b * c; d = a + bc; da = d * a; root = da.sum()
        return root, {x: "x", w: "w", a: "a = x*w", b: "b = a*x", bc: "b*c", d: "d = a + b*c",
                      da: "d*a"}
    return [chain(1), _Graph("x*w reused twice, and a constant c", diamond), chain(6)]

def _topo_cases(g): return [Case(("root",), (graph,)) for graph in _graphs(g)]

def _topo_outputs(order, names, root):
    "What an order shows: the tensors in it, the first, and any tensor after one it made."
    named = [names.get(t, "the root" if t is root else repr(type(t).__name__)) for t in order]
    position = {id(t): i for i, t in enumerate(order)}
    late = any(position[id(p)] < position[id(t)] for t in order
               for p in getattr(t, "parents", ()) if id(p) in position)
    return {"the tensors, in any order": sorted(named), "first": named[0] if named else None,
            "some tensor comes before a tensor made from it": late}

def _topo_run(fn, case):
    root, names = case.args[0].build()
    order = call(fn, root)
    if not isinstance(order, (list, tuple)):
        raise Unusable(f"topological_order must return a list, not {type(order).__name__}")
    grads_set = [names.get(t, "the root") for t in [root, *names]
                 if getattr(t, "grad", None) is not None]
    return {**_topo_outputs(list(order), names, root), "tensors given a .grad": grads_set}

def _topo_expected(case):
    root, names = case.args[0].build()
    needed = [root] + [t for t in names if t.requires_grad]
    out = _topo_outputs(needed, names, root)
    return {**out, "first": "the root", "some tensor comes before a tensor made from it": False,
            "tensors given a .grad": []}

def _topo_postorder(root):
    order, seen = [], set()
    def visit(t):
        if id(t) in seen or not getattr(t, "requires_grad", False): return
        seen.add(id(t))
        for p in t.parents: visit(p)
        order.append(t)
    visit(root)
    return order

def _topo_preorder(root):
    order, seen, stack = [], set(), [root]
    while stack:
        t = stack.pop()
        if id(t) in seen or not getattr(t, "requires_grad", False): continue
        seen.add(id(t)); order.append(t); stack.extend(t.parents)
    return order

def _topo_no_seen(root):
    out = []
    def visit(t):
        for p in t.parents:
            if getattr(p, "requires_grad", False): visit(p)
        out.append(t)
    visit(root)
    return out[::-1]

def _topo_all(root):
    order, seen = [], set()
    def visit(t):
        if id(t) in seen: return
        seen.add(id(t))
        for p in getattr(t, "parents", ()): visit(p)
        order.append(t)
    visit(root)
    return order[::-1]

register("topological_order", "autograd", _topo_cases, run=_topo_run, expected=_topo_expected,
         slips=[
    (_topo_postorder,
        "The order runs from the leaves up: reverse it, so that the root comes first and every "
        "tensor comes before the tensors it was made from."),
    (_topo_preorder,
        "A tensor is listed as soon as it is reached, before every tensor made from it has been: "
        "add it only after visiting its parents (post-order), then reverse."),
    (_topo_no_seen,
        "A tensor reached along two paths is listed twice: keep a set of visited tensors."),
    (_topo_all,
        "Constants and tensors that need no gradient are listed: keep only those with "
        "`requires_grad`."),
])

class _Ops:
    "The operations a recipe uses, on torch tensors (for autograd) or through make_node."
    def __init__(self, engine):
        self.engine, self.backward_of = engine, {}
    def node(self, data, parents, backward, op):
        (make_node,) = _engine("make_node")
        out = make_node(data, parents, backward, op)
        self.backward_of[out] = backward
        return out
    def mul(self, a, b):
        if not self.engine: return a * b
        return self.node(a.data * b.data, (a, b), lambda g: (g * b.data, g * a.data), "*")
    def add(self, a, b):
        if not self.engine: return a + b
        return self.node(a.data + b.data, (a, b), lambda g: (g, g), "+")
    def total(self, a):
        if not self.engine: return a.sum()
        return self.node(a.data.sum(), (a,), lambda g: (g.expand(a.shape),), "sum")
    def local_grads(self, node, g):
        "One gradient per parent of `node`, given d root / d node = g, each in its parent's shape."
        (unbroadcast,) = _engine("unbroadcast")
        if node not in self.backward_of: return []   # a leaf: no parents
        hands = self.backward_of[node](g)
        return [None if h is None or not hasattr(p, "shape") else unbroadcast(h, tuple(p.shape))
                for p, h in zip(node.parents, hands)]

def _twice(o, a): return o.total(o.add(a, o.mul(a, a)))   # a node used three times

_RECIPES = {   # name: (leaf shapes, recipe(ops, *leaves) -> root)
    "x*x": (((3,),), lambda o, x: o.total(o.mul(x, x))),
    "a = x*w used twice": (((3,), (3,)), lambda o, x, w: _twice(o, o.mul(x, w))),
    "x (3, 1) * w (4,), broadcast": (((3, 1), (4,)),
                                     lambda o, x, w: o.total(o.mul(o.mul(x, w), x))),
    "a non-scalar root, with grad": (((2, 3), (2, 3)), lambda o, x, w: o.add(o.mul(x, w), x)),
}

def _backward_cases(g):
    cases = []
    for name, (shapes, _) in _RECIPES.items():
        for dtype in _DTYPES:
            data = [_randn(g, *s, dtype=dtype) for s in shapes]
            grad = _randn(g, 2, 3, dtype=dtype) if name.startswith("a non-scalar") else None
            earlier = _randn(g, *shapes[0], dtype=dtype)   # x.grad before: backward adds to it
            cases.append(Case(("recipe", "leaves", "grad"), (name, data, grad),
                              extra={"earlier": earlier}))
    return cases

def _backward_build(case, engine):
    name, data, grad = case.args
    shapes, recipe = _RECIPES[name]
    if engine:
        (Tensor,) = _engine("Tensor")
        leaves = [Tensor(d.clone(), requires_grad=True) for d in data]
    else: leaves = [d.clone().requires_grad_() for d in data]
    ops = _Ops(engine)
    root = recipe(ops, *leaves)
    leaves[0].grad = case.extra["earlier"].clone()
    return ops, leaves, root, grad

def _backward_run(fn, case):
    ops, leaves, root, grad = _backward_build(case, engine=True)
    call(fn, root, ops.local_grads, grad)
    return {f"{n}.grad": t.grad for n, t in zip("xw", leaves)}

def _backward_expected(case):
    _, leaves, root, grad = _backward_build(case, engine=False)
    root.backward(grad)
    return {f"{n}.grad": t.grad.detach() for n, t in zip("xw", leaves)}

def _backward_slip(overwrite_uses=False, overwrite_grad=False, seed_ones=False, reverse=False):
    def backward(root, local_grads, grad=None):
        (topological_order,) = _engine("topological_order")
        order = topological_order(root)[::-1] if reverse else topological_order(root)
        seed = torch.ones_like(root.data) if grad is None or seed_ones else grad
        grads = {root: seed}
        for node in order:
            g = grads.pop(node, None)
            if g is None: continue
            node.grad = g if node.grad is None or overwrite_grad else node.grad + g
            for p, pg in zip(node.parents, local_grads(node, g)):
                if pg is None or not getattr(p, "requires_grad", False): continue
                grads[p] = pg if p not in grads or overwrite_uses else grads[p] + pg
    return backward

_backward_stub = {"name": "backward", "signature": "def backward(root, local_grads, grad=None):"}

register("backward", "autograd", _backward_cases, run=_backward_run, expected=_backward_expected,
         slips=[
    (_backward_slip(overwrite_uses=True),
        "A tensor used more than once keeps only its last use's gradient: sum the gradients "
        "arriving from every use before passing it on."),
    (_backward_slip(overwrite_grad=True),
        "`.grad` is replaced: backward *adds* into `.grad` (`t.grad = t.grad + g` when it is "
        "already set), so that gradients accumulate across calls."),
    (_backward_slip(seed_ones=True),
        "The `grad` argument is ignored: start from `grad` when it is given (d loss / d root), and "
        "from ones only for a scalar root without one."),
    (_backward_slip(reverse=True),
        "The walk starts at the leaves: go root first (`topological_order(root)`), so that each "
        "tensor's gradient is complete before it is passed on."),
])

def _op_cases(g, shapes, **kwargs):
    "Cases for an operation: operands of `shapes` (tuples), and a gradient for the result."
    cases = []
    for operand_shapes, result_shape, options in shapes:
        for dtype in _DTYPES:
            args = tuple(_randn(g, *s, dtype=dtype) for s in operand_shapes)
            names = ("a", "b")[:len(args)] if len(args) == 2 else ("x",)
            cases.append(Case(names + tuple(options), args + tuple(options.values()),
                              extra={"grad": _randn(g, *result_shape, dtype=dtype)}))
    return cases

def _op_run(arity, name):
    "A runner for an operation built with make_node: its result, its graph, and its gradients."
    def run(fn, case):
        (Tensor,) = _engine("Tensor")
        leaves = [Tensor(a.clone(), requires_grad=True) for a in case.args[:arity]]
        out = call(fn, *leaves, *case.args[arity:])
        if not isinstance(out, Tensor):
            raise Unusable(f"{name} must return the chapter's Tensor, made with make_node(data, "
                           f"parents, backward, op); it returned a {type(out).__name__}")
        if not out.requires_grad:
            raise Unusable(f"{name}'s result has no graph (requires_grad is False): make it with "
                           "make_node, with the operands as its parents")
        named = {id(t): n for n, t in zip(case.names, leaves)}
        parents = tuple(named.get(id(p), type(p).__name__) for p in out.parents)
        result = {"result.data": out.data.detach().clone(), "result.parents": parents}
        call(out.backward, case.extra["grad"].clone())
        grads_of = {f"{n}.grad": t.grad for n, t in zip(case.names, leaves)}
        inputs = {f"input {n}": t.data.clone() for n, t in zip(case.names, leaves)}
        return {**result, **grads_of, **inputs}
    return run

def _op_expected(arity, torch_fn):
    "What autograd gives for `torch_fn` on the case: the expected outputs of `_op_run`."
    def expected(case):
        leaves = [a.clone().requires_grad_() for a in case.args[:arity]]
        out = torch_fn(*leaves, *case.args[arity:])
        out.backward(case.extra["grad"])
        return {"result.data": out.detach(), "result.parents": tuple(case.names[:arity]),
                **{f"{n}.grad": t.grad for n, t in zip(case.names, leaves)},
                **{f"input {n}": a for n, a in zip(case.names, case.args[:arity])}}
    return expected

def _node(data, parents, backward, op):
    (make_node,) = _engine("make_node")
    return make_node(data, parents, backward, op)

def _mul_slip(backward):
    return lambda a, b: _node(a.data * b.data, (a, b), lambda g: backward(g, a.data, b.data), "*")

def _matmul_slip(backward):
    return lambda a, b: _node(a.data @ b.data, (a, b), lambda g: backward(g, a.data, b.data), "@")

_BROADCAST_PAIRS = [(((1,), (1,)), (1,), {}), (((3,), (3,)), (3,), {}),
                    (((2, 3), (3,)), (2, 3), {}), (((3, 1), (4,)), (3, 4), {}),
                    (((2, 1, 3), (4, 1)), (2, 4, 3), {})]
_MATMUL_PAIRS = [(((1, 1), (1, 1)), (1, 1), {}), (((2, 3), (3, 4)), (2, 4), {}),
                 (((3, 3), (3, 3)), (3, 3), {}), (((4, 2), (2, 5)), (4, 5), {})]

register("Tensor.__mul__", "autograd", lambda g: _op_cases(g, _BROADCAST_PAIRS), key="mul",
         run=_op_run(2, "mul"), expected=_op_expected(2, torch.mul), slips=[
    (_mul_slip(lambda g, a, b: (g * a, g * b)),
        "Each operand's gradient is the upstream gradient times the *other* operand: d(a*b)/da = "
        "b, so a gets `g * b`."),
    (_mul_slip(lambda g, a, b: (g, g)),
        "d(a*b)/da is b, not 1: multiply the upstream gradient by the other operand."),
    (_mul_slip(lambda g, a, b: (b, a)),
        "The upstream gradient is missing: each operand gets `g` times the other operand (the "
        "chain rule)."),
])

register("Tensor.__matmul__", "autograd", lambda g: _op_cases(g, _MATMUL_PAIRS), key="matmul",
         run=_op_run(2, "matmul"), expected=_op_expected(2, torch.matmul), slips=[
    (_matmul_slip(lambda g, a, b: (g @ b, a @ g)),
        "The transposes are missing: for c = a @ b, a's gradient is `g @ b.T` (n, k) and b's is "
        "`a.T @ g` (k, m)."),
    (_matmul_slip(lambda g, a, b: (g @ b.T, g.T @ a)),
        "b's gradient is transposed: it must have b's shape (k, m), which `a.T @ g` has."),
    (_matmul_slip(lambda g, a, b: (b.T @ g, a.T @ g)),
        "a's gradient has its factors the wrong way round: `g @ b.T`, shape (n, m) times (m, k)."),
])

def _sum_slip(forward, backward):
    def tensor_sum(x, dim, keepdim=False):
        def grad(g): return (backward(g, x.data, dim, keepdim),)
        return _node(forward(x.data, dim, keepdim), (x,), grad, "sum")
    return tensor_sum

_SUM_SHAPES = [(((1,),), (), {"dim": 0, "keepdim": False}),
               (((3, 4),), (3,), {"dim": 1, "keepdim": False}),
               (((3, 3),), (3,), {"dim": 1, "keepdim": False}),
               (((2, 3, 4),), (1, 3, 4), {"dim": 0, "keepdim": True}),
               (((4, 4),), (4, 1), {"dim": -1, "keepdim": True})]

def _expand(g, x, dim, keepdim): return (g if keepdim else g.unsqueeze(dim)).expand(x.shape)

register("Tensor.sum", "autograd", lambda g: _op_cases(g, _SUM_SHAPES), key="tensor_sum",
         run=_op_run(1, "tensor_sum"), expected=_op_expected(1, torch.sum), slips=[
    (_sum_slip(torch.sum, lambda g, x, d, k: g.expand(x.shape)),
        "Without keepdim, the gradient lost the summed dimension: put it back (`g.unsqueeze(dim)`) "
        "before expanding, or it lines up with the wrong dimension."),
    (_sum_slip(torch.sum, lambda g, x, d, k: _expand(g, x, d, k) / x.shape[d]),
        "The gradient is divided by the number of entries summed: that is the mean's backward. "
        "Each entry of a sum has slope 1."),
    (_sum_slip(lambda x, d, k: x.mean(d, keepdim=k),
               lambda g, x, d, k: _expand(g, x, d, k) / x.shape[d]),
        "The forward pass takes the mean: sum the entries instead."),
])

def _log_softmax_slip(forward, backward):
    def log_softmax(x, dim=-1):
        out = forward(x.data, dim)
        return _node(out, (x,), lambda g: (backward(g, out, dim),), "log_softmax")
    return log_softmax

_LOG_SOFTMAX_SHAPES = [(((1, 1),), (1, 1), {"dim": -1}), (((2, 3),), (2, 3), {"dim": -1}),
                       (((3, 3),), (3, 3), {"dim": -1}), (((3, 4),), (3, 4), {"dim": 0})]

def _log_softmax_cases(g):
    cases = _op_cases(g, _LOG_SOFTMAX_SHAPES)
    large = _randn(g, 2, 4, dtype=torch.float32) * 20 + 100   # exp(100) overflows in float32
    grad = _randn(g, 2, 4, dtype=torch.float32)
    cases.append(Case(("x", "dim"), (large, -1), extra={"grad": grad}))
    return cases

def _naive_log_softmax(x, dim): return x - x.exp().sum(dim, keepdim=True).log()
def _right_log_softmax_grad(g, out, dim): return g - out.exp() * g.sum(dim, keepdim=True)

register("Tensor.log_softmax", "autograd", _log_softmax_cases, key="log_softmax",
         run=_op_run(1, "log_softmax"), expected=_op_expected(1, torch.log_softmax), slips=[
    (_log_softmax_slip(torch.log_softmax, lambda g, out, dim: g - out.exp() * g),
        "The backward misses the sum: every output depends on every input of its row, so it is `g "
        "- softmax * g.sum(dim, keepdim=True)`."),
    (_log_softmax_slip(_naive_log_softmax, _right_log_softmax_grad),
        "exp() overflows for large scores: subtract each row's maximum before exp (the log-sum-exp "
        "trick)."),
    (_log_softmax_slip(lambda x, dim: x.log_softmax(-1),
                       lambda g, out, dim: _right_log_softmax_grad(g, out, -1)),
        "The `dim` argument is ignored: normalise along `dim`, not always the last dimension."),
])

def _sigmoid_slip(forward, backward):
    def sigmoid(x):
        out = forward(x.data)
        return _node(out, (x,), lambda g: (backward(g, out),), "sigmoid")
    return sigmoid

def _sigmoid_cases(g):
    cases = _op_cases(g, [(((1,),), (1,), {}), (((5,),), (5,), {}), (((2, 3),), (2, 3), {})])
    big = torch.tensor([-60.0, -5.0, 0.0, 5.0, 60.0])
    cases.append(Case(("x",), (big,), extra={"grad": torch.ones(5)}))
    return cases

register("sigmoid", "autograd", _sigmoid_cases, run=_op_run(1, "sigmoid"),
         expected=_op_expected(1, torch.sigmoid), slips=[
    (_sigmoid_slip(torch.sigmoid, lambda g, s: g * s),
        "The backward misses a factor: the sigmoid's slope is s (1 - s), where s is its output."),
    (_sigmoid_slip(torch.sigmoid, lambda g, s: s * (1 - s)),
        "The upstream gradient is missing: multiply the slope s (1 - s) by `g` (the chain rule)."),
    (_sigmoid_slip(lambda x: 1 / (1 + x.exp()), lambda g, s: g * s * (1 - s)),
        "The sign in the exponent is flipped: sigmoid(x) = 1 / (1 + exp(-x)), which grows with x."),
])

# %% the engine exercises' stubs: the chapter writes these inside its engine, so they live here
_ENGINE_IMPORTS = "from foundations.autograd import Tensor, make_node, unbroadcast"

def _stub(intro, signature, doc, solution):
    "An exercise's stub (its signature and docstring, the body to write) and a solution."
    code = f'{signature}\n    "{doc}"\n    raise NotImplementedError("your code here")'
    return {"intro": intro, "code": code, "solution": f'{signature}\n    "{doc}"\n{solution}'}

_ENGINE_STUBS = {
    "topological_order": _stub(
        "### The order of the backward pass\n\nBackward visits a tensor only when every tensor "
            "made "
        "from it has handed it its gradient. Write `topological_order(root)`: the root first, each "
        "tensor before the tensors it was made from (`t.parents`), each once, and only tensors "
        "with `requires_grad` (a parent may be a plain number).",
        "def topological_order(root):", "Root first; every tensor before those it was made from.",
        "    order, seen = [], set()\n    def visit(t):\n"
        "        if id(t) in seen or not getattr(t, 'requires_grad', False): return\n"
        "        seen.add(id(t))\n        for p in t.parents: visit(p)\n        order.append(t)\n"
        "    visit(root)\n    return order[::-1]"),
    "backward": _stub(
        "### The backward pass\n\nWrite the walk itself. `local_grads(node, g)` gives, for a node "
        "whose gradient is `g`, one gradient per parent (None for a parent with none), already in "
        "each parent's shape. A tensor used twice receives two contributions: sum them. Add into "
        "`.grad` (`t.grad = g` if it is None, else `t.grad + g`), as `Tensor.backward` does.",
        "def backward(root, local_grads, grad=None):",
        "Add d root / d t into t.grad for every tensor t of root's graph that requires grad.",
        "    grads = {root: torch.ones_like(root.data) if grad is None else grad}\n"
        "    for node in topological_order(root):\n        g = grads.pop(node)\n"
        "        node.grad = g if node.grad is None else node.grad + g\n"
        "        for p, pg in zip(node.parents, local_grads(node, g)):\n"
        "            if pg is None or not getattr(p, 'requires_grad', False): continue\n"
        "            grads[p] = grads[p] + pg if p in grads else pg"),
    "mul": _stub(
        "### Operations through `make_node`\n\nAn operation computes its result on `.data` and "
        "hands `make_node(data, parents, backward, op)` a `backward(g)` that returns one gradient "
        "per parent. The engine sums a broadcast gradient back to each parent's shape.",
        "def mul(a, b):", "a * b as a graph node: d(ab)/da = b, d(ab)/db = a.",
        "    return make_node(a.data * b.data, (a, b), lambda g: (g * b.data, g * a.data), '*')"),
    "matmul": _stub("", "def matmul(a, b):", "a @ b (2-D) as a graph node.",
        "    return make_node(a.data @ b.data, (a, b),\n"
        "                     lambda g: (g @ b.data.T, a.data.T @ g), '@')"),
    "tensor_sum": _stub("", "def tensor_sum(x, dim, keepdim=False):",
        "x.sum(dim, keepdim) as a graph node: each entry's slope is 1.",
        "    def backward(g): return ((g if keepdim else g.unsqueeze(dim)).expand(x.shape),)\n"
        "    return make_node(x.data.sum(dim, keepdim=keepdim), (x,), backward, 'sum')"),
    "log_softmax": _stub("", "def log_softmax(x, dim=-1):",
        "log(softmax(x)) along dim, stable for large scores, as a graph node.",
        "    out = x.data - x.data.logsumexp(dim, keepdim=True)\n"
        "    def backward(g): return (g - out.exp() * g.sum(dim, keepdim=True),)\n"
        "    return make_node(out, (x,), backward, 'log_softmax')"),
    "sigmoid": _stub(
        "### An operation of your own\n\nThe engine has no sigmoid. Add it, as any new operation "
        "is added: forward on `.data`, and a backward through `make_node`.",
        "def sigmoid(x):", "1 / (1 + exp(-x)) as a graph node: its slope is s (1 - s).",
        "    s = torch.sigmoid(x.data)\n"
        "    return make_node(s, (x,), lambda g: (g * s * (1 - s),), 'sigmoid')"),
}

def _solution(name):
    "The stub's solution as a function, for the book's own tests."
    (Tensor, make_node, unbroadcast, topological_order) = _engine(
        "Tensor", "make_node", "unbroadcast", "topological_order")
    scope = {"torch": torch, "Tensor": Tensor, "make_node": make_node, "unbroadcast": unbroadcast,
             "topological_order": topological_order}
    exec(_ENGINE_STUBS[name]["solution"], scope)
    return scope[name]

for _key, _stub_of in _ENGINE_STUBS.items():
    _EXERCISE = exercise_named(_key)
    _EXERCISE.stub = {**_stub_of, "imports": _ENGINE_IMPORTS, "check": lambda k=_key: _solution(k)}
