# %% imports, and what the layers reuse of chapters 3 and 4
import math
import torch
from foundations.exercises import (Case, Stat, Unusable, book, call, exercise_named, grads,
                                   register, returns)
from foundations import exercises_by_hand  # noqa: F401  (the earlier chapters' exercises first)

_DTYPES = (torch.float32, torch.float64)

def _randn(g, *shape, dtype=torch.float64):
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)

def _earlier(name, what="cases"):
    "An earlier chapter's exercise's cases or slips, from the registry (its module comes first)."
    exercise = exercise_named(name)
    return exercise.cases if what == "cases" else exercise.slip_list()

_xavier, _kaiming = (lambda n: 1 / math.sqrt(n)), (lambda n: math.sqrt(2 / n))
_MASK_INVERTED, _KINK = (hint for (_, hint) in _earlier("relu_grad", "slips")[0:4:3])

# %% chapter 5: layers as objects
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

register("Lin", "modules", lambda g: _layer_cases(g, _earlier("lin_grad")),
         run=_layer_run(("inp", "w", "b")),
         slips=lambda: _layer_slips(_lin_class, _earlier("lin", "slips"),
                                    _earlier("lin_grad", "slips"), lambda x, w, b: x @ w + b,
                                    _book_grad("lin_grad"))())
register("Relu", "modules", lambda g: _layer_cases(g, _earlier("relu_grad")),
         run=_layer_run(("inp",)),
         slips=lambda: _layer_slips(_function_class, _earlier("relu", "slips"),
                                    _earlier("relu_grad", "slips"), lambda x: x.clamp_min(0),
                                    _book_grad("relu_grad"))())
register("Mse", "modules", lambda g: _layer_cases(g, _earlier("mse_grad")),
         run=_layer_run(("inp",)),
         slips=lambda: _layer_slips(_function_class, _earlier("mse", "slips"),
                                    _earlier("mse_grad", "slips"), *book("init", "mse"),
                                    *book("backprop", "mse_grad"))())

def _my_relu_cases(g):
    return [Case(("x",), case.args[:1], extra={"grad": case.upstream["out"]})
            for case in _earlier("relu_grad")(g)]

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
    *[(_autograd_relu(f, lambda inp, g: g * (inp > 0)), hint)
      for f, hint in _earlier("relu", "slips")],
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp < 0)), _MASK_INVERTED),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp <= 0)), _MASK_INVERTED),
    (_autograd_relu(lambda x: x.clamp_min(0), lambda inp, g: g * (inp >= 0)), _KINK),
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

# %% chapter 6: cross-entropy
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

# %% chapter 7: convolution as a matrix product
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

# %% chapter 9: unbroadcast, and a loss through the engine
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

# %% the idea of each exercise: the first of its hints
_IDEAS = {
    "Lin": "Keep w and b; forward computes the linear layer, backward fills the three `.g`.",
    "Relu": "Forward is relu; backward passes the output's gradient where the input was positive.",
    "Mse": "Forward is the loss; backward sets the predictions' gradient (the loss is the end).",
    "MyRelu": "forward saves the input with ctx.save_for_backward; backward masks grad_output.",
    "LinearLayer": "Weights from `init`, stored transposed as nn.Linear does; a zero bias; both "
                   "nn.Parameter.",
    "cross_entropy": "Log-softmax each row (stably), pick the correct class's entry, average, "
                     "negate.",
    "cross_entropy_grad": "Softmax minus the one-hot targets, divided by the batch size.",
    "conv2d_unfold": "Unfold the patches into columns, multiply by the flattened kernels, then "
                     "reshape to the output's height and width.",
    "unbroadcast": "Sum over the dimensions that broadcasting added in front and those it "
                   "stretched from 1.",
    "autograd.cross_entropy": "Compose the Tensor's log_softmax with picking and averaging: the "
                              "engine does the backward.",
}
for _name, _idea in _IDEAS.items(): exercise_named(_name).hints = (_idea,)
