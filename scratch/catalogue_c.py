# %% imports
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

register("Tensor.backward", "autograd", _backward_cases, key="backward", run=_backward_run,
         expected=_backward_expected,
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
_ENGINE_IMPORTS = "from foundations.autograd import Tensor, make_node"

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

# %% the idea of each exercise: the first of its hints
_IDEAS = {
    "topological_order": "A depth-first search that lists a tensor after its parents, then "
                         "reversed; keep a set of those visited.",
    "backward": "Walk the order from the root; sum each tensor's incoming gradients before "
                "handing them on.",
    "mul": "Forward on .data; backward gives each operand g times the other operand.",
    "matmul": "For c = a @ b: a's gradient is g @ b.T and b's is a.T @ g.",
    "tensor_sum": "Every summed entry has slope 1: put the gradient back in the summed "
                  "dimension and expand it.",
    "log_softmax": "Subtract each row's log-sum-exp; the backward is g minus softmax times the "
                   "row sum of g.",
    "sigmoid": "Keep the output s; the slope is s (1 - s).",
}
for _name, _idea in _IDEAS.items(): exercise_named(_name).hints = (_idea,)
