"""More wrong answers, written as a learner might: the promises of the docstrings, state kept
between calls, inputs changed in place, endless loops, the book's own code, results the grader
cannot use, the slips the issue found hinted wrongly, and the engine exercises of chapter 9.

Each entry: (exercise, wrong implementation, a phrase its hint must contain; None: the plain
report, with no hint at all)."""
import math

import torch
import torch.nn.functional as F
from torch import nn

import foundations.init as book_init
from foundations.autograd import Tensor
from foundations.autograd import make_node

# ---- promises of the docstrings ----

def broadcast_no_bare_int(*shapes):
    n = max((len(s) for s in shapes), default=0)
    return tuple(torch.broadcast_shapes(*[tuple(s) for s in shapes])) if n >= 0 else ()

def broadcast_rejects_zero(*shapes):
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    if any(0 in s for s in shapes): raise ValueError("a size of 0 cannot broadcast")
    return tuple(torch.broadcast_shapes(*shapes))

def mse_python_float(output, targ): return float(((output.squeeze(-1) - targ) ** 2).mean())
def mse_float64(output, targ): return ((output.squeeze(-1).double() - targ) ** 2).mean()

class LinearLayerIgnoresInit(nn.Module):
    def __init__(self, n_in, n_out, *, dtype=None, device=None, generator=None, init=None):
        super().__init__()
        w = book_init.kaiming_init(n_in, n_out, dtype=dtype, generator=generator)
        self.weight = nn.Parameter(w.t().contiguous())
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=w.dtype))
    def forward(self, x): return x @ self.weight.t() + self.bias

def lin_batch_of_one_squeezed(x, w, b): return (x @ w + b).squeeze(0)

def relu_returns_float64(x): return x.double().clamp_min(0)

# ---- state kept between calls ----

_relu_cache = {}
def relu_cached_by_shape(x):
    if x.shape not in _relu_cache: _relu_cache[x.shape] = x.clamp_min(0)
    return _relu_cache[x.shape]

_calls = [0]
def lin_counts_calls(x, w, b):
    _calls[0] += 1
    return x @ w + b + (0.0 if _calls[0] % 7 else 1e-3)

_mse_memo = {}
def mse_memo_by_shape(output, targ):
    key = (tuple(output.shape), output.dtype)
    if key not in _mse_memo: _mse_memo[key] = ((output.squeeze(-1) - targ) ** 2).mean()
    return _mse_memo[key]

# ---- inputs changed in place ----

class MyReluInPlace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp):
        inp.clamp_(min=0)
        ctx.save_for_backward(inp)
        return inp.clone()
    @staticmethod
    def backward(ctx, grad_output): inp, = ctx.saved_tensors; return grad_output * (inp > 0)

def normalize_in_place(x, mean, std):
    mean = torch.as_tensor(mean, dtype=x.dtype).reshape(-1, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype).reshape(-1, 1, 1)
    return x.sub_(mean).div_(std)

def lin_grad_scales_out_g(inp, out, w, b):
    out.g *= 1.0
    out.g[0] = out.g[0] * 1.0 + 0.0
    inp.g, w.g, b.g = out.g @ w.T, inp.T @ out.g, out.g.sum(0)
    out.g.zero_()

def neuron_pops_inputs(inputs, weights, bias):
    total = bias
    while inputs: total = total + inputs.pop() * weights[len(inputs)]
    return total

# ---- endless loops ----

def relu_endless(x):
    while True: pass

def matmul_loops_while(a, b):
    c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    i = 0
    while i < a.shape[0]:
        for j in range(b.shape[1]): c[i, j] = (a[i] * b[:, j]).sum()
    return c

# ---- the slips the issue found hinted wrongly: now the plain report ----

def cross_entropy_rows_off_by_one(logits, targ):
    total = 0.0
    for i in range(len(targ) - 1): total = total - logits[i].log_softmax(-1)[targ[i]]
    return total / len(targ)

def lin_grad_bias_keepdim(inp, out, w, b):
    inp.g, w.g, b.g = out.g @ w.T, inp.T @ out.g, out.g.sum(0, keepdim=True)

def relu_grad_swapped_arguments(out, inp): inp.g = out.g * (inp > 0)

def normalize_channels_last(x, mean, std):
    mean, std = torch.as_tensor(mean, dtype=x.dtype), torch.as_tensor(std, dtype=x.dtype)
    return (x - mean[:, None]) / std[:, None]

def mse_grad_halved(inp, targ):
    inp.g = ((inp.reshape(-1) - targ.reshape(-1)) / targ.numel()).reshape(inp.shape) * 1.5

def conv_ignores_padding(x, weight, bias=None, stride=1, padding=0):
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    cols = F.unfold(x, (kh, kw), stride=(sh, sw))
    out = (weight.reshape(c_out, -1) @ cols)
    if bias is not None: out = out + bias[:, None]
    return out.reshape(n, c_out, (h - kh) // sh + 1, (w - kw) // sw + 1)

def forward_and_backward_no_n(inp, targ, w1, b1, w2, b2):
    from foundations.core import zero_grads
    from foundations.backprop import lin_grad, relu_grad
    l1 = inp @ w1 + b1
    l2 = l1.clamp_min(0)
    out = l2 @ w2 + b2
    zero_grads(inp, w1, b1, w2, b2)
    out.g = 2 * (out[:, 0] - targ)[:, None]
    lin_grad(l2, out, w2, b2); relu_grad(l1, l2); lin_grad(inp, l1, w1, b1)
    return ((out[:, 0] - targ) ** 2).mean()

# ---- results the grader cannot use (said plainly, no hint) ----

def autograd_ce_torch_tensor(logits, targets): return F.cross_entropy(logits.data, targets)
def autograd_ce_wrapped_leaf(logits, targets): return Tensor(F.cross_entropy(logits.data, targets))

# ---- more slips, each with its named hint ----

def kaiming_two_over_sqrt(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype, generator=generator) * 2 / math.sqrt(n_in)

def xavier_fan_out(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, dtype=dtype, generator=generator) / math.sqrt(n_out)

def xavier_ignores_dtype(n_in, n_out, *, dtype=None, device=None, generator=None):
    return torch.randn(n_in, n_out, generator=generator) / math.sqrt(n_in)

def relu_abs(x): return x.abs()
def mse_rmse(output, targ): return ((output.squeeze(-1) - targ) ** 2).mean().sqrt()
def mse_mae(output, targ): return (output.squeeze(-1) - targ).abs().mean()
def lin_bias_column(x, w, b): return x @ w + b[:, None]
def unbroadcast_leading_only(grad, shape):
    while grad.ndim > len(shape): grad = grad.sum(0)
    return grad
def cross_entropy_no_minus(logits, targ):
    return logits.log_softmax(-1)[range(len(targ)), targ].mean()
def cross_entropy_grad_sign(inp, targ):
    inp.g = (F.one_hot(targ, inp.shape[1]).to(inp.dtype) - inp.softmax(-1)) / inp.shape[0]
def conv_no_stride(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, padding=padding)
def neuron_averages(inputs, weights, bias):
    return sum(x * w for x, w in zip(inputs, weights)) / len(inputs) + bias
def matmul_elementwise_skips_last(a, b):
    c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]): c[i, j] = (a[i, :-1] * b[:-1, j]).sum()
    return c

# ---- chapter 9: the engine ----

def topo_leaves_first(root):
    order, seen = [], set()
    def visit(t):
        if id(t) in seen or not getattr(t, "requires_grad", False): return
        seen.add(id(t))
        for p in t.parents: visit(p)
        order.append(t)
    visit(root)
    return order

def topo_breadth_first(root):
    order, seen, queue = [], set(), [root]
    while queue:
        t = queue.pop(0)
        if id(t) in seen: continue
        seen.add(id(t)); order.append(t)
        queue += [p for p in t.parents if getattr(p, "requires_grad", False)]
    return order

def topo_no_visited_set(root):
    out = []
    def visit(t):
        for p in t.parents:
            if getattr(p, "requires_grad", False): visit(p)
        out.append(t)
    visit(root)
    return out[::-1]

def topo_keeps_constants(root):
    order, seen = [], set()
    def visit(t):
        if id(t) in seen: return
        seen.add(id(t))
        for p in getattr(t, "parents", ()): visit(p)
        order.append(t)
    visit(root)
    return order[::-1]

def topo_returns_set(root): return set(topo_leaves_first(root))

def _walk(root, local_grads, grad, sum_uses=True, add_into=True, seed=None, order=None):
    from foundations.autograd import topological_order
    grads = {root: seed(root) if seed else (torch.ones_like(root.data) if grad is None else grad)}
    for node in (order or topological_order)(root):
        g = grads.pop(node, None)
        if g is None: continue
        node.grad = g if node.grad is None or not add_into else node.grad + g
        for p, pg in zip(node.parents, local_grads(node, g)):
            if pg is None or not getattr(p, "requires_grad", False): continue
            grads[p] = grads[p] + pg if p in grads and sum_uses else pg

def backward_last_use_wins(root, local_grads, grad=None):
    _walk(root, local_grads, grad, sum_uses=False)
def backward_replaces_grad(root, local_grads, grad=None):
    _walk(root, local_grads, grad, add_into=False)
def backward_ignores_grad(root, local_grads, grad=None):
    _walk(root, local_grads, grad, seed=lambda r: torch.ones_like(r.data))
def backward_leaves_first(root, local_grads, grad=None):
    from foundations.autograd import topological_order
    _walk(root, local_grads, grad, order=lambda r: topological_order(r)[::-1])

def mul_swapped(a, b):
    return make_node(a.data * b.data, (a, b), lambda g: (g * a.data, g * b.data), "*")
def mul_ones(a, b): return make_node(a.data * b.data, (a, b), lambda g: (g, g), "*")
def mul_no_upstream(a, b):
    return make_node(a.data * b.data, (a, b), lambda g: (b.data, a.data), "*")
def mul_book_operator(a, b): return a * b
def mul_torch_result(a, b): return a.data * b.data

def matmul_no_transposes(a, b):
    return make_node(a.data @ b.data, (a, b), lambda g: (g @ b.data, a.data @ g), "@")
def matmul_b_grad_transposed(a, b):
    return make_node(a.data @ b.data, (a, b), lambda g: (g @ b.data.T, g.T @ a.data), "@")
def matmul_a_grad_reversed(a, b):
    return make_node(a.data @ b.data, (a, b), lambda g: (b.data.T @ g, a.data.T @ g), "@")

def tensor_sum_no_unsqueeze(x, dim, keepdim=False):
    return make_node(x.data.sum(dim, keepdim=keepdim), (x,), lambda g: (g.expand(x.shape),), "sum")
def tensor_sum_divides(x, dim, keepdim=False):
    def backward(g): return ((g if keepdim else g.unsqueeze(dim)).expand(x.shape) / x.shape[dim],)
    return make_node(x.data.sum(dim, keepdim=keepdim), (x,), backward, "sum")
def tensor_sum_means(x, dim, keepdim=False):
    def backward(g): return ((g if keepdim else g.unsqueeze(dim)).expand(x.shape) / x.shape[dim],)
    return make_node(x.data.mean(dim, keepdim=keepdim), (x,), backward, "sum")

def log_softmax_no_sum(x, dim=-1):
    out = x.data.log_softmax(dim)
    return make_node(out, (x,), lambda g: (g - out.exp() * g,), "log_softmax")
def log_softmax_diagonal(x, dim=-1):   # the same slip as "no sum", written differently
    out = x.data.log_softmax(dim)
    return make_node(out, (x,), lambda g: (g * (1 - out.exp()),), "log_softmax")
def log_softmax_naive(x, dim=-1):
    out = x.data - x.data.exp().sum(dim, keepdim=True).log()
    def backward(g): return (g - out.exp() * g.sum(dim, keepdim=True),)
    return make_node(out, (x,), backward, "log_softmax")
def log_softmax_last_dim(x, dim=-1):
    out = x.data.log_softmax(-1)
    return make_node(out, (x,), lambda g: (g - out.exp() * g.sum(-1, keepdim=True),), "log_softmax")

def sigmoid_missing_factor(x):
    s = torch.sigmoid(x.data)
    return make_node(s, (x,), lambda g: (g * s,), "sigmoid")
def sigmoid_no_upstream(x):
    s = torch.sigmoid(x.data)
    return make_node(s, (x,), lambda g: (s * (1 - s),), "sigmoid")
def sigmoid_sign(x):
    s = 1 / (1 + x.data.exp())
    return make_node(s, (x,), lambda g: (g * s * (1 - s),), "sigmoid")
def sigmoid_composed(x): return 1 / (1 + (-x).exp())   # the book's operations: no node of its own

HINT_STATE, HINT_IN_PLACE = "keeps something between calls", "instead of writing into the arguments"
HINT_LOOP = "A loop that never ends?"

MORE = [
    ("broadcast_shapes", broadcast_no_bare_int, "A bare int n stands for the shape (n,)"),
    ("broadcast_shapes", broadcast_rejects_zero, None),
    ("mse", mse_python_float, "The loss is a Python number"),
    ("mse", mse_float64, "float64 for float32 inputs"),
    ("LinearLayer", LinearLayerIgnoresInit, "The `init` argument is ignored"),
    ("lin", lin_batch_of_one_squeezed, None),
    ("relu", relu_returns_float64, None),
    ("relu", relu_cached_by_shape, HINT_STATE),
    ("lin", lin_counts_calls, None),
    ("mse", mse_memo_by_shape, HINT_STATE),
    ("MyRelu", MyReluInPlace, HINT_IN_PLACE),
    ("normalize", normalize_in_place, HINT_IN_PLACE),
    ("lin_grad", lin_grad_scales_out_g, HINT_IN_PLACE),
    ("neuron", neuron_pops_inputs, HINT_IN_PLACE),
    ("relu", relu_endless, HINT_LOOP),
    ("matmul_elementwise", matmul_loops_while, HINT_LOOP),
    ("cross_entropy", cross_entropy_rows_off_by_one, None),
    ("lin_grad", lin_grad_bias_keepdim, None),
    ("relu_grad", relu_grad_swapped_arguments, None),
    ("normalize", normalize_channels_last, None),
    ("mse_grad", mse_grad_halved, None),
    ("conv2d_unfold", conv_ignores_padding, "The padding is ignored"),
    ("forward_and_backward", forward_and_backward_no_n, "not divided by n"),
    ("autograd.cross_entropy", autograd_ce_torch_tensor, None),
    ("autograd.cross_entropy", autograd_ce_wrapped_leaf, None),
    ("kaiming_init", kaiming_two_over_sqrt, "the factor 2 belongs to the variance"),
    ("xavier_init", xavier_fan_out, "uses n_out"),
    ("xavier_init", xavier_ignores_dtype, "dtype argument is ignored"),
    ("relu", relu_abs, "come out positive"),
    ("mse", mse_rmse, "root of the mean squared error"),
    ("mse", mse_mae, "mean *absolute* error"),
    ("lin", lin_bias_column, "is a column"),
    ("unbroadcast", unbroadcast_leading_only, "Only the added leading dimensions are summed"),
    ("cross_entropy", cross_entropy_no_minus, "minus sign is missing"),
    ("cross_entropy_grad", cross_entropy_grad_sign, "sign is flipped"),
    ("conv2d_unfold", conv_no_stride, "stride is ignored"),
    ("neuron", neuron_averages, "averaged"),
    ("matmul_elementwise", matmul_elementwise_skips_last, "misses its last term"),
    ("topological_order", topo_leaves_first, "reverse it"),
    ("topological_order", topo_breadth_first, "before every tensor made from it"),
    ("topological_order", topo_no_visited_set, "listed twice"),
    ("topological_order", topo_keeps_constants, "keep only those with `requires_grad`"),
    ("topological_order", topo_returns_set, None),
    ("backward", backward_last_use_wins, "keeps only its last use's gradient"),
    ("backward", backward_replaces_grad, "`.grad` is replaced"),
    ("backward", backward_ignores_grad, "The `grad` argument is ignored"),
    ("backward", backward_leaves_first, "The walk starts at the leaves"),
    ("mul", mul_swapped, "times the *other* operand"),
    ("mul", mul_ones, "d(a*b)/da is b, not 1"),
    ("mul", mul_no_upstream, "upstream gradient is missing"),
    ("mul", mul_book_operator, "calls the book's own"),
    ("mul", mul_torch_result, None),
    ("matmul", matmul_no_transposes, "transposes are missing"),
    ("matmul", matmul_b_grad_transposed, "b's gradient is transposed"),
    ("matmul", matmul_a_grad_reversed, "factors the wrong way round"),
    ("tensor_sum", tensor_sum_no_unsqueeze, "put it back (`g.unsqueeze(dim)`)"),
    ("tensor_sum", tensor_sum_divides, "that is the mean's backward"),
    ("tensor_sum", tensor_sum_means, "forward pass takes the mean"),
    ("log_softmax", log_softmax_no_sum, "misses the sum"),
    ("log_softmax", log_softmax_diagonal, "misses the sum"),
    ("log_softmax", log_softmax_naive, "overflows"),
    ("log_softmax", log_softmax_last_dim, "`dim` argument is ignored"),
    ("sigmoid", sigmoid_missing_factor, "misses a factor"),
    ("sigmoid", sigmoid_no_upstream, "upstream gradient is missing"),
    ("sigmoid", sigmoid_sign, "sign in the exponent is flipped"),
    ("sigmoid", sigmoid_composed, None),
]

# ---- one more for each class exercise and the matrix products ----

def matmul_broadcast_wrong_dim(a, b):   # raises on non-square b, wrong on square: plain report
    c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    for i in range(a.shape[0]): c[i] = (a[i, :, None] * b).sum(1)
    return c

def einsum_b_swapped(a, b): return torch.einsum("ik,jk->ij", a, b)

def make_lin_no_bias_grad():
    from foundations.modules import LayerFunction
    class Lin(LayerFunction):
        def __init__(self, w, b): super().__init__(); self.w, self.b = w, b
        def forward(self, inp): return inp @ self.w + self.b
        def bwd(self, out, inp): inp.g, self.w.g = out.g @ self.w.T, inp.T @ out.g
    return Lin

def make_relu_leaky():
    from foundations.modules import LayerFunction
    class Relu(LayerFunction):
        def forward(self, inp): return torch.where(inp > 0, inp, 0.01 * inp)
        def bwd(self, out, inp): inp.g = out.g * (inp > 0)
    return Relu

def make_mse_sum():
    from foundations.modules import LayerFunction
    from foundations.backprop import mse_grad
    class Mse(LayerFunction):
        def forward(self, inp, targ): return ((inp.squeeze(-1) - targ) ** 2).sum()
        def bwd(self, out, inp, targ): mse_grad(inp, targ)
    return Mse

def cross_entropy_grad_softmax_dim0(inp, targ):
    inp.g = (inp.softmax(0) - F.one_hot(targ, inp.shape[1]).to(inp.dtype)) / inp.shape[0]

MORE += [
    ("matmul_broadcast", matmul_broadcast_wrong_dim, None),
    ("matmul_einsum", einsum_b_swapped, "The subscripts of b are swapped"),
    ("Lin", make_lin_no_bias_grad(), "b.g was never set"),
    ("Relu", make_relu_leaky(), "leaky"),
    ("Mse", make_mse_sum(), "divides by n"),
    ("cross_entropy_grad", cross_entropy_grad_softmax_dim0, "runs over the wrong dimension"),
]
