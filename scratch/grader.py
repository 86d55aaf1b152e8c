# %% imports
import difflib, functools, importlib, inspect, json, math, os, signal, sys, threading, traceback
import types
from pathlib import Path
import torch

# %% values: a raised error, a statistic; showing and comparing them (with assert_close)
class _Raised:
    "What a call raised, kept as a value so that an expected error compares like any output."
    def __init__(self, error): self.error = error
    def __repr__(self): return f"{type(self.error).__name__}: {self.error}"

class Stat:
    "A statistic of random draws (a std, a mean) and the margin within which it must fall."
    def __init__(self,
                 value:float, # the statistic's exact value
                 margin:float, # how far a correct draw may land from it
                ):
        self.value, self.margin = value, margin
    def __repr__(self): return f"{self.value:.4g} ± {self.margin:.2g}"

def _shape_str(shape): return f"({shape[0]},)" if len(shape) == 1 else str(tuple(shape))

def _show(x, n=6):
    "A value as a report shows it: a tensor's shape, dtype and first few values; else its repr."
    if isinstance(x, _Raised): return f"raised {x!r}"
    if isinstance(x, torch.Tensor):
        values = x.detach().reshape(-1)[:n].tolist()
        more = ", ..." if x.numel() > n else ""
        shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)
        dtype = str(x.dtype).removeprefix("torch.")
        return f"shape {_shape_str(x.shape)} {dtype} [{shown}{more}]"
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."

def _tolerance(expected):
    "Absolute and relative tolerance for `expected`: a few hundred roundings of its dtype."
    finite = expected.detach()[torch.isfinite(expected.detach())].abs()
    scale = max(1.0, finite.max().item()) if finite.numel() else 1.0
    return (1e-10 * scale, 1e-8) if expected.dtype == torch.float64 else (1e-5 * scale, 1e-4)

def _tensor_difference(expected, got):
    "None if tensor `got` matches `expected`, else what differs (kind, shape, dtype, values)."
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor, received {type(got).__name__} {_show(got)}"
    if got.shape != expected.shape:
        return f"expected shape {_shape_str(expected.shape)}, received {_shape_str(got.shape)}"
    if got.dtype != expected.dtype: return f"expected dtype {expected.dtype}, received {got.dtype}"
    if got.device != expected.device: return f"expected device {expected.device}, got {got.device}"
    if expected.dtype in (torch.bool, torch.int64) or not expected.is_floating_point():
        return None if torch.equal(got, expected) else "the values differ"
    atol, rtol = _tolerance(expected)
    try: torch.testing.assert_close(got.detach(), expected.detach(), atol=atol, rtol=rtol,
                                    equal_nan=True)
    except AssertionError as error:   # its report: mismatched count, largest abs and rel difference
        return "\n".join(str(error).splitlines()[2:])
    return None

def _difference(expected, got):
    "None if `got` agrees with `expected`, else a short description of how they differ."
    if isinstance(expected, _Raised):
        if isinstance(got, _Raised) and isinstance(got.error, type(expected.error)): return None
        return f"expected {expected!r}"
    if isinstance(got, _Raised): return f"raised {got!r}"
    if isinstance(expected, Stat):
        if not isinstance(got, (int, float)) or math.isnan(got): return f"received {got!r}"
        if abs(got - expected.value) <= expected.margin: return None
        return f"expected {expected.value:.4g} (± {expected.margin:.2g}), received {got:.4g}"
    if isinstance(expected, torch.Tensor): return _tensor_difference(expected, got)
    if type(got) is not type(expected):
        return f"expected a {type(expected).__name__}, received a {type(got).__name__}: {got!r}"
    return None if got == expected else f"expected {expected!r}, received {got!r}"

def _agree(a, b, expected=None):
    "Do two outputs agree (errors of one type, tensors or numbers within rounding, draws alike)?"
    if isinstance(a, _Raised) or isinstance(b, _Raised):
        return (isinstance(a, _Raised) and isinstance(b, _Raised)
                and type(a.error) is type(b.error) and str(a.error) == str(b.error))
    if isinstance(a, float) and isinstance(b, float):   # two draws: within twice a margin
        margin = 2 * expected.margin if isinstance(expected, Stat) else 1e-6 * max(1, abs(a))
        return abs(a - b) <= margin
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):   # float32's tolerance
        if a.shape != b.shape or a.dtype != b.dtype: return False
        if not a.is_floating_point(): return torch.equal(a, b)
        close = torch.isclose(a.double(), b.double(), rtol=1e-4, atol=1e-5, equal_nan=True)
        return bool(close.all())
    return _difference(a, b) is None

# %% the learner's code, the grader's steps, and a time limit
class Unusable(Exception):
    "Raised by a runner when the learner's result lacks what the grader needs from it."

class _LearnerError(Exception):
    "An error raised inside the learner's code, carried out of a runner."
    def __init__(self, error): super().__init__(str(error)); self.error = error

class _TookTooLong(BaseException):
    "The learner's code ran past the time limit (a BaseException: `except Exception` can't eat it)."

def call(fn, # the learner's function, class or method
         *args, **kwargs):
    "Call the learner's `fn`, leaving out keyword arguments it does not take: a runner's one door."
    taken = {k: v for k, v in kwargs.items() if k not in _OPTIONAL or _accepts(fn, k)}
    dropped = kwargs.get("generator") if "generator" not in taken else None
    try:
        if dropped is None: return fn(*args, **taken)
        with torch.random.fork_rng(devices=[]):   # no generator taken: seed the global one alike
            torch.manual_seed(dropped.initial_seed())
            return fn(*args, **taken)
    except Exception as error: raise _LearnerError(error) from error

_OPTIONAL = ("dtype", "device", "generator")   # a learner may leave these out

def _accepts(fn, name):
    "Does `fn` (a function or a class) take a keyword argument `name`?"
    try: params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError): return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind is not p.POSITIONAL_ONLY)
               for p in params)

def _with_time_limit(thunk, seconds):
    "Run `thunk()`; raise _TookTooLong after `seconds` (SIGALRM in the main thread, else a thread)."
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if alarm and signal.getitimer(signal.ITIMER_REAL)[0] == 0:
        def stop(signum, frame): raise _TookTooLong()
        previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.25)   # again every 0.25 s, if swallowed
        try: return thunk()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box = {}
    def target():
        try: box["value"] = thunk()
        except BaseException as error: box["error"] = error
    worker = threading.Thread(target=target, daemon=True)
    worker.start(); worker.join(seconds)
    if worker.is_alive(): raise _TookTooLong()
    if "error" in box: raise box["error"]
    return box["value"]

# %% a case, and runners
class Case:
    "One input of a check: the arguments by name, upstream gradients to attach as `.g`, options."
    def __init__(self,
                 names:tuple, # the arguments' names, as the stub's signature has them
                 args:tuple, # the arguments
                 upstream:dict|None=None, # {name: gradient}: set as `.g` on that argument
                 kwargs:dict|None=None, # keyword arguments (dtype=...: left out where not taken)
                 extra:dict|None=None, # what a runner needs beyond the arguments
                ):
        self.names, self.args = names, args
        self.upstream, self.kwargs, self.extra = upstream or {}, kwargs or {}, extra or {}

    def fresh(self):
        "Copies of the arguments that no call has touched: no `.g` except the upstream ones."
        args = [a.clone() if isinstance(a, torch.Tensor) else list(a) if isinstance(a, list)
                else a for a in self.args]
        for name, g in self.upstream.items(): args[self.names.index(name)].g = g.clone()
        return args

    def unchanged(self, args):
        "The tensor (and list) arguments after a call, labelled: writing into them shows."
        out = {}
        for name, a in zip(self.names, args):
            if isinstance(a, (torch.Tensor, list)): out[f"input {name}"] = _frozen(a)
            if name in self.upstream: out[f"input {name}.g"] = _frozen(getattr(a, "g", None))
        return out

    def size(self): return sum(a.numel() if isinstance(a, torch.Tensor) else 1 for a in self.args)

    def __str__(self):
        parts = []
        for name, a in zip(self.names, self.args):
            tensors = isinstance(a, list) and a and isinstance(a[0], torch.Tensor)
            shown = f" [{'; '.join(map(_show, a))}]" if tensors else None
            parts.append(f"{name} {_show(a)}" if isinstance(a, torch.Tensor)
                         else f"{name}{shown}" if shown else f"{name}={a!r}")
            if name in self.upstream: parts[-1] += f" with {name}.g {_show(self.upstream[name])}"
        return "; ".join(parts + [f"{k}={v!r}" for k, v in self.kwargs.items()])

    def shapes(self):
        "The case's shapes and dtypes only, for a time-limit report."
        def brief(a):
            if isinstance(a, torch.Tensor): return _shape_str(a.shape)
            if isinstance(a, list) and a and isinstance(a[0], torch.Tensor):
                return "[" + ", ".join(_shape_str(t.shape) for t in a) + "]"
            return f"={a!r}"
        return ", ".join(f"{n} {brief(a)}".replace(" =", "=") for n, a in zip(self.names, self.args))

def _frozen(x):
    if isinstance(x, torch.Tensor): return x.detach().clone()
    if isinstance(x, list): return torch.tensor(x, dtype=torch.float64) if x else x
    return x

_RAW = types.SimpleNamespace(result=None)   # the latest result as returned, before any copy

def returns(fn, case):
    "Runner of a plain function: its result, and its inputs afterwards."
    args = case.fresh()
    result = _RAW.result = call(fn, *args, **case.kwargs)
    if isinstance(result, torch.Tensor): result = result.detach().clone()
    return {"result": result, **case.unchanged(args)}

def grads(*names):
    "Runner of a gradient function: call it on fresh tensors, then read `.g` of each of `names`."
    def run(fn, case):
        args = case.fresh()
        call(fn, *args, **case.kwargs)
        found = {f"{n}.g": getattr(args[case.names.index(n)], "g", None) for n in names}
        return {**found, **case.unchanged(args)}
    return run

# %% an exercise, and the registry
_EXERCISES = {}

def _book_code(obj):
    "The code objects of the book's `obj`: a function's own, or those of a class's own methods."
    if inspect.isfunction(obj): return {inspect.unwrap(obj).__code__}
    found = set()
    for value in vars(obj).values() if inspect.isclass(obj) else ():
        value = getattr(value, "__func__", getattr(value, "fget", value))
        if inspect.isfunction(value): found.add(value.__code__)
    return found

class _Exercise:
    "How to grade one of the book's functions: its cases, its runner, its known slips, its hints."
    def __init__(self, name, module, cases, run=returns, slips=(), expected=None, key=None,
                 hints=(), stub=None):
        self.name, self.module, self.cases, self.run = name, module, cases, run
        self.slips, self.expected, self.key = slips, expected, key or name
        self.hints, self.stub = hints, stub

    def reference(self):
        "The book's version (a dotted name reaches a method, `Tensor.sum`), or None if none."
        found = importlib.import_module(f"foundations.{self.module}")
        for part in self.name.split("."): found = getattr(found, part, None)
        return found

    def slip_list(self): return list(self.slips() if callable(self.slips) else self.slips)

    def outputs(self, fn, case):
        "What `fn` gives on `case`; an error its code raises becomes an output too."
        try: return self.run(fn, case)
        except _LearnerError as error: return {"error": _Raised(error.error)}
        except Unusable as problem: return {"unusable": str(problem)}

    def expect(self, case):
        return self.expected(case) if self.expected else self.outputs(self.reference(), case)

def register(name:str, # the book's name of the function or class
             module:str, # the library module that holds the book's version
             cases, # cases(generator) -> list of `Case`
             run=returns, # run(fn, case) -> {label: output}
             slips=(), # [(wrong function, its hint)], or a function returning that list
             *,
             expected=None, # expected(case) -> outputs, for random functions
             key:str|None=None, # how `check` names it, where two chapters share a name
             hints:tuple=(), # graduated hints: the idea, the shapes, the formula
             stub:dict|None=None, # {"intro", "code", "solution"} where the chapter has no cell
            ):
    "Register how `check` grades one of the book's functions."
    exercise = _Exercise(name, module, cases, run, slips, expected, key, hints, stub)
    _EXERCISES[exercise.key] = exercise

def book(module:str, # a module of the library, e.g. "backprop"
         *names:str):
    "The book's own `names` from `foundations.<module>`, looked up when a check needs them."
    found = importlib.import_module(f"foundations.{module}")
    return tuple(getattr(found, name) for name in names)

def _catalogue():
    "Every exercise, registered by the catalogue module on first use."
    if not _EXERCISES:
        for part in ("by_hand", "layers", "engine"):
            importlib.import_module(f"foundations.exercises_{part}")
    return _EXERCISES

def _lookup(name):
    "The exercise called `name`, or a ValueError that suggests the nearest names."
    exercises = _catalogue()
    if not isinstance(name, str): raise TypeError(
        f"name must be a string like 'relu', not {name!r}")
    if name in exercises: return exercises[name]
    close = difflib.get_close_matches(name, exercises, n=3, cutoff=0.6)
    guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"check knows no exercise called {name!r}{guess} The exercises are: "
                     f"{', '.join(exercises)}")

@functools.lru_cache(maxsize=256)
def _prepared(key, seed):
    "The cases of exercise `key` for `seed`, smallest first, each with the book's outputs on it."
    exercise = _EXERCISES[key]
    cases = sorted(exercise.cases(torch.Generator().manual_seed(seed)), key=lambda c: c.size())
    return tuple((case, exercise.expect(case)) for case in cases)

# %% running the learner's code: watched for the book's code, and timed
def _watched(exercise, fn, case, limit):
    "`fn`'s outputs on `case`, and whether it called the book's own version (a profiler hook)."
    reference = None if getattr(_BOOK_ALLOWED, "on", False) else exercise.reference()
    codes, seen = (_book_code(reference) if reference is not None else set()), []
    def hook(frame, event, arg):
        if event == "call" and frame.f_code in codes: seen.append(frame.f_code)
    def thunk():
        previous = sys.getprofile()
        sys.setprofile(hook)
        try: return exercise.outputs(fn, case)
        finally: sys.setprofile(previous)
    try: got = _with_time_limit(thunk, limit)
    except _TookTooLong: got = {"timeout": limit}
    return got, bool(seen)

def _problems(expected, got):
    "[(label, description)] of every way `got` differs from `expected`; [] when they agree."
    if "unusable" in got: return [("unusable", got["unusable"])]
    if "timeout" in got: return [("timeout", "")]
    if "error" in expected:
        same = "error" in got and isinstance(got["error"].error, type(expected["error"].error))
        return [] if same else [("raise", "")]
    if "error" in got: return [("error", "")]
    found = []
    for label, value in expected.items():
        difference = _difference(value, got.get(label))
        if difference is not None: found.append((label, difference))
    return found

def _same(a, b, expected=None):
    "Do two runs' outputs agree label by label (`expected`: the right ones, for their margins)?"
    expected = expected or {}
    return a.keys() == b.keys() and all(_agree(a[k], b[k], expected.get(k)) for k in a)

# %% naming a slip, only on evidence that tells it apart
class _Evidence:
    "The cases of a failed check, with the learner's and the slips' outputs, computed when asked."
    def __init__(self, exercise, fn, runnable, limit, budget=3):
        self.exercise, self.fn, self.runnable, self.limit = exercise, fn, runnable, limit
        self.slips, self.learner, self.made, self.budget = exercise.slip_list(), {}, {}, budget

    def slip(self, i, k):
        if (i, k) not in self.made:
            self.made[i, k] = self.exercise.outputs(self.slips[i][0], self.runnable[k][0])
        return self.made[i, k]

    def learners(self, k):
        "The learner's outputs on case k, run only while the budget of extra cases lasts."
        if k not in self.learner:
            if self.budget == 0: return None
            self.budget -= 1
            self.learner[k] = _watched(self.exercise, self.fn, self.runnable[k][0], self.limit)[0]
        return self.learner[k]

    def alike(self, i, j):
        "Do slips i and j give the same outputs on every case (one slip, two ways to write it)?"
        cases = range(len(self.runnable))
        return all(self.same(self.slip(i, k), self.slip(j, k), k) for k in cases)

    def same(self, a, b, k): return _same(a, b, self.runnable[k][1])

    def telling(self, i, avoid_errors=False):
        "The largest case where slip i differs from the right answer and from every other slip."
        hint = self.slips[i][1]
        others = [j for j, (_, h) in enumerate(self.slips) if h != hint and not self.alike(i, j)]
        for k in reversed(range(len(self.runnable))):
            mine = self.slip(i, k)
            if avoid_errors and "error" in mine: continue
            if self.same(mine, self.runnable[k][1], k): continue
            if not any(self.same(mine, self.slip(j, k), k) for j in others): return k
        return None

    def hint(self, index):
        "The hint of the slip the learner's outputs match on case `index` and on its telling case."
        got = self.learner[index]
        for i, (_, hint) in enumerate(self.slips):
            if "error" not in got and not self.same(self.slip(i, index), got, index): continue
            raised_alike = "error" in got and self.same(self.slip(i, index), got, index)
            k = self.telling(i, avoid_errors="error" in got and not raised_alike)
            if k is None or (k == index and not raised_alike and "error" in got): continue
            seen = self.learners(k)
            if seen is not None and self.same(seen, self.slip(i, k), k): return hint
        return None

def _repeats_earlier(raw, history):
    "Is `raw`, the learner's result as returned, a tensor it returned before (kept state)?"
    return isinstance(raw, torch.Tensor) and any(raw is kept or (
        raw.data_ptr() != 0 and raw.data_ptr() == kept.data_ptr()) for kept in history)

_STUB = "your code here"
_HINT_IN_PLACE = ("Build new tensors instead of writing into the arguments: `x.clamp_min(0)`, "
                  "not `x.clamp_min_(0)` or `x[x < 0] = 0`.")
_HINT_STATE = ("It returned a tensor it had returned before, for another input: it keeps "
               "something between calls (a cache, a global). Compute from the arguments each time.")
_HINT_LOOP = ("A loop that never ends? Check that each `while` condition changes, and that no loop "
              "runs over a list it keeps growing.")

def _where(error):
    "The line of the learner's code where `error` was raised, if there is one."
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "foundations" not in f.filename and "torch" not in f.filename]
    if not frames: return ""
    frame = frames[-1]
    return f" (in {frame.name}, line {frame.lineno}: `{(frame.line or '').strip()}`)"

def _lines(expected, got, problems, fn_name):
    "The report's lines for each problem of one case."
    out = []
    for label, difference in problems:
        if label in ("unusable", "error", "raise"):
            if label == "unusable": out.append(difference)
            elif "error" in got:
                out.append(f"{fn_name} raised {got['error']!r}{_where(got['error'].error)}")
            else: out.append(f"{fn_name} returned {_show(got.get('result'))}")
            out += [f"expected {k}: {_show(v)}" for k, v in expected.items()
                    if not k.startswith("input ")]
            continue
        if label.startswith("input "):
            out.append(f"{fn_name} changed its {label} in place: it was {_show(expected[label])}, "
                       f"afterwards {_show(got.get(label))}")
            continue
        received = got.get(label)
        out.append(f"{label}: expected {_show(expected[label])}")
        out.append(f"  received {_show(received)}" if received is not None
                   else f"  received nothing: {label} was not set")
        out += [f"  {line}" for line in difference.splitlines()
                if received is not None and not line.startswith(("expected", "received"))]
    return out

def _message(header, case, lines, hint):
    body = "\n".join(f"  {line}" for line in lines)
    return f"{header}\n  inputs: {case}\n{body}" + (f"\nHint: {hint}" if hint else "")

def _stub_message(fn_name, got):
    "None, or what to say when the learner's code still raises the stub's NotImplementedError."
    error = got.get("error")
    if not (error and isinstance(error.error, NotImplementedError) and str(error.error) == _STUB):
        return None
    frames = traceback.extract_tb(error.error.__traceback__)
    where = frames[-1].name if frames else fn_name
    if where in (fn_name, "__init__", "forward", "backward", "bwd"):
        return f"{fn_name}: not written yet (its cell still raises NotImplementedError)"
    return f"{fn_name} calls {where}, which is not written yet: write {where} first"

# %% the report, and grading
def _name_of(fn): return getattr(fn, "__name__", type(fn).__name__)

_BOOK_ALLOWED = threading.local()   # set only where the book grades itself (its own tests)

def _refusal(exercise, fn):
    "A message when `fn` is the book's own object, else None."
    reference = None if getattr(_BOOK_ALLOWED, "on", False) else exercise.reference()
    wrapped = getattr(fn, "func", getattr(fn, "__wrapped__", None))
    if reference is not None and (fn is reference or wrapped is reference):
        return (
            f"this is the book's {exercise.key} (foundations.{exercise.module}), not yours: run "
                f"the cell that defines your {exercise.name}, then check again")
    return None

def _untested(exercise, fn, prepared):
    "The optional keyword arguments of the stub that `fn` does not take, and the cases left."
    optional = _OPTIONAL
    reference = exercise.reference()
    names = {k for k in optional if reference is not None and _accepts(reference, k)
             and not _accepts(fn, k)}
    names |= {k for case, _ in prepared for k in case.kwargs
              if k in optional and not _accepts(fn, k)}
    runnable = [(c, e) for c, e in prepared
                if all(_accepts(fn, k) for k in c.kwargs if k in optional)]
    return sorted(names), runnable

_HISTORY = {}   # exercise: the learner's latest outputs, across checks (a cache shows here)

def _first_failure(exercise, fn, runnable, limit):
    "(index, outputs) of the first case that fails, or (None, history) if all pass."
    history = _HISTORY.setdefault((exercise.key, _name_of(fn)), [])   # outputs that passed
    for index, (case, expected) in enumerate(runnable):
        _RAW.result = None
        got, used_book = _watched(exercise, fn, case, limit)
        if used_book:
            raise AssertionError(
                f"{_name_of(fn)} calls the book's own {exercise.name} (foundations."
                                 f"{exercise.module}): the check grades your code, so write it "
                                 "without calling the book's version")
        if _problems(expected, got): return index, got, history
        if isinstance(_RAW.result, torch.Tensor): history.append(_RAW.result)   # kept alive
        del history[:-60]
    return None, None, history

def _failure(exercise, fn, runnable, index, got, history, limit):
    "The message for the first failing case: what differs, and a hint only on evidence."
    case, expected = runnable[index]
    fn_name, problems = _name_of(fn), _problems(expected, got)
    header = (f"{fn_name} does not agree with the book's {exercise.key} on case {index + 1} of "
              f"{len(runnable)}, the smallest that fails:")
    if problems[0][0] == "timeout":
        return (f"{fn_name} took longer than {limit:g} s on inputs of shape {case.shapes()} "
                f"(case {index + 1} of {len(runnable)}).\nHint: {_HINT_LOOP}")
    hint = None
    if any(label.startswith("input ") for label, _ in problems): hint = _HINT_IN_PLACE
    elif _repeats_earlier(_RAW.result, history): hint = _HINT_STATE
    elif problems[0][0] != "unusable":
        evidence = _Evidence(exercise, fn, runnable, limit)
        evidence.learner[index] = got
        hint = evidence.hint(index)
    return _message(header, case, _lines(expected, got, problems, fn_name), hint)

def _state_pass(exercise, fn, seed, limit, history, runnable):
    "Rerun fresh values on shapes that passed: a result kept between calls shows here."
    passed = {_signature(c) for c, _ in runnable}
    twins = [(c, e) for c, e in _untested(exercise, fn, _prepared(exercise.key, seed + 7919))[1]
             if _signature(c) in passed][-3:]
    for case, expected in twins:
        _RAW.result = None
        got = _watched(exercise, fn, case, limit)[0]
        if not _problems(expected, got): continue
        fn_name = _name_of(fn)
        header = (f"{fn_name} passed every case, then failed a new input of shapes that passed "
                  "before:")
        hint = _HINT_STATE if _repeats_earlier(_RAW.result, history) else None
        lines = _lines(expected, got, _problems(expected, got), fn_name)
        return _message(header, case, lines, hint)
    return None

def _signature(case):
    return tuple((n, tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else (n, repr(a))
                 for n, a in zip(case.names, case.args) if n != "seed") + tuple(case.kwargs.items())

def _grade(exercise, fn, seed, limit):
    "(verdict: passed, failed or not written; message; number of cases; untested; error)."
    untested, runnable = _untested(exercise, fn, _prepared(exercise.key, seed))
    index, got, history = _first_failure(exercise, fn, runnable, limit)
    if index is None:
        message = _state_pass(exercise, fn, seed, limit, history, runnable)
        return ("failed" if message else "passed"), message, len(runnable), untested, None
    stub = _stub_message(_name_of(fn), got)
    if stub: return "not written", stub, len(runnable), untested, None
    error = got["error"].error if "error" in got else None
    message = _failure(exercise, fn, runnable, index, got, history, limit)
    return "failed", message, len(runnable), untested, error

# %% check, hints on request, progress
def check(name:str, # the book's name for the function or class, e.g. "lin_grad"
          fn, # your implementation: a function (or a class, for the layers)
          *,
          seed:int=0, # seed for the random cases (the same seed, the same cases)
          time_limit:float=10.0, # seconds each case may take
         ) -> None: # prints one line, or raises AssertionError saying what is wrong
    "Grade `fn` against the book's `name` on many cases; print a verdict or raise with the reason."
    exercise = _lookup(name)
    refusal = _refusal(exercise, fn)
    if refusal: raise AssertionError(refusal)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny cases: one thread is faster, above all on a busy machine
    try: status, message, n_cases, untested, error = _grade(exercise, fn, seed, time_limit)
    finally: torch.set_num_threads(threads)
    _record(name, status == "passed")
    if status == "not written": print(message); return
    if message: raise AssertionError(message) from error
    note = (f" (not tested: {', '.join(k + '=' for k in untested)}, which your {_name_of(fn)} "
            "does not take"
            + ("; its draws were seeded with torch.manual_seed" if "generator" in untested else "")
            + ")") if untested else ""
    print(f"{name}: all {n_cases} cases agree with the book's {name}{note}")

def exercise_modules() -> dict: # {"lin_grad": "backprop", ...}, in the book's order
    "The names `check` can grade, each with the library module that holds the book's version."
    return {key: exercise.module for key, exercise in _catalogue().items()}

def exercise_named(name:str, # an exercise's name, as `check` knows it
                  ):
    "The registered exercise called `name` (its cases, slips, hints and stub), for the catalogue."
    return _lookup(name)

_hints_given = {}

def _hints(exercise):
    "Three hints: the idea (written for it), the shapes (its largest case), the book's docstring."
    case, expected = _prepared(exercise.key, 0)[-1]
    shown = [f"{k} {_shape_str(v.shape)}" if isinstance(v, torch.Tensor) else f"{k} {v!r}"
             for k, v in expected.items() if not k.startswith("input ") and k != "error"]
    reference = exercise.reference()
    doc = exercise.stub["code"].split('"')[1] if exercise.stub else (reference.__doc__ or "")
    return [*exercise.hints[:1], f"On {case.shapes()}, the book's version gives "
            f"{'; '.join(shown)}.", f"The book's version: {doc.strip().splitlines()[0]}"]

def hint(name:str, # the exercise, e.g. "lin_grad"
         level:int|None=None, # 1: the idea, 2: the shapes, 3: the formula; None: the next one
        ) -> None:
    "Print a hint for exercise `name`: each call without `level` gives the next, more direct one."
    hints = _hints(_lookup(name))
    if level is None: level = min(_hints_given.get(name, 0) + 1, len(hints))
    if not 1 <= level <= len(hints):
        raise ValueError(f"level must be between 1 and {len(hints)}, not {level}")
    _hints_given[name] = max(level, _hints_given.get(name, 0))
    print(f"{name}, hint {level} of {len(hints)}: {hints[level - 1]}")

def progress_path() -> Path: # where `check` records what passed
    "The file of passed exercises: $FOUNDATIONS_PROGRESS, else ~/.cache/nn-foundations/."
    default = Path.home() / ".cache" / "nn-foundations" / "progress.json"
    return Path(os.environ.get("FOUNDATIONS_PROGRESS", default))

def _load():
    try: return json.loads(progress_path().read_text())
    except (OSError, ValueError): return {}

def _record(name, passed):
    "Remember in the progress file whether `name` passed its latest check."
    done = _load()
    done[name] = bool(passed)
    try:
        progress_path().parent.mkdir(parents=True, exist_ok=True)
        progress_path().write_text(json.dumps(done, indent=1, sort_keys=True))
    except OSError: pass   # a read-only home: progress is simply not kept

def progress() -> dict: # {exercise: True if its latest check passed here}
    "Print which exercises passed their latest check in this environment, and which remain."
    done, names = _load(), list(_catalogue())
    passed = [n for n in names if done.get(n)]
    remaining = [n for n in names if not done.get(n)]
    print(f"{len(passed)} of {len(names)} exercises passed in this environment "
          f"(recorded in {progress_path()})" + (": all of them." if not remaining else "."))
    if passed: print("passed: " + ", ".join(passed))
    if remaining: print("still to do: " + ", ".join(remaining))
    return {n: bool(done.get(n)) for n in names}
