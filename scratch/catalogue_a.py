# %% imports, and random inputs
import math
import torch
from foundations.exercises import Case, Stat, book, call, exercise_named, grads, register

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

# %% chapter 1: a neuron and three matrix products
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

# %% chapter 2: broadcasting and einsum
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

# %% chapter 3: a linear layer, ReLU, initialisation, the loss
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

# %% chapter 4: the gradients, by hand
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

# %% the idea of each exercise: the first of its hints (the shapes and the formula follow)
_IDEAS = {
    "neuron": "Multiply each input by its weight, add the products up, then add the bias once.",
    "matmul_loops": "c[i, j] is row i of a times column j of b: one loop per index, i, j and "
                    "the summed p.",
    "matmul_elementwise": "Replace the innermost loop by one elementwise product of a row and "
                          "a column, then a sum.",
    "broadcast_shapes": "Line the shapes up at their last dimension; at each position the sizes "
                        "must agree or be 1.",
    "normalize": "mean and std hold one number per channel; give them the shape (C, 1, 1) so "
                 "they broadcast over height and width.",
    "matmul_broadcast": "Row i of the product is the sum over k of a[i, k] times row k of b: "
                        "make a[i] a column and broadcast.",
    "matmul_einsum": "Name each dimension with a letter; the letter that disappears in the "
                     "output is summed.",
    "lin": "One matrix product of the batch with the weights, then the bias added to every row.",
    "relu": "Keep the positive entries, replace the others with zero, in a new tensor.",
    "mse": "Make the predictions and the targets one shape, then average the squared "
           "differences.",
    "xavier_init": "Draw standard normal weights and scale them so each output keeps the "
                   "input's variance.",
    "kaiming_init": "Like Xavier, but ReLU zeroes half the activations: double the variance.",
    "mse_grad": "Differentiate the mean of squares: each prediction's share, in its own shape.",
    "relu_grad": "The gradient passes where the input was positive and stops elsewhere.",
    "lin_grad": "Each of the three gradients is a product with the upstream gradient; match "
                "the shapes.",
    "forward_and_backward": "Forward through both layers keeping the intermediates, then "
                            "backward from the loss, clearing old gradients first.",
}
for _name, _idea in _IDEAS.items(): exercise_named(_name).hints = (_idea,)
