"""Chapter 9's public engine API (the contract: Tensor.parents, .op, make_node, topological_order).

Until the issue-25 work lands, the names are added from the engine's private ones so that the engine
exercises can be tested; once `foundations.autograd` has them, this does nothing."""
import foundations.autograd as _autograd

engine_api_present = hasattr(_autograd, "make_node")
if not engine_api_present:
    _autograd.Tensor.parents = property(lambda t: t._parents)
    _autograd.Tensor.op = property(lambda t: t._op)
    _autograd.make_node = _autograd._result
    _autograd.topological_order = _autograd._topological_order
