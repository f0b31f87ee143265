"""PyroModule, PyroParam, PyroSample: Pyro's API for Modules whose attributes
are params and random variables of a model.

Why: a Bayesian layer is an ordinary layer whose weight is a sample site.
`PyroModule[Linear](3, 1)` is a Linear whose attribute reads go through the
effect handlers -- a plain param becomes `csvi.param("<prefix>.weight")`, a
`PyroParam` a constrained `csvi.param`, a `PyroSample` a `csvi.sample` site
drawn once per call of the root module -- named by the attribute's path from
the root PyroModule ("linear.weight").
"""
import dataclasses
import functools
from collections import OrderedDict
from typing import Any, NamedTuple, Optional

from csvi import _core, constraints
from csvi.nn.container import ModuleList
from csvi.nn.module import Module, Parameter
from csvi.nn.primitive import module as register_module
from csvi.params import get_param_store
from csvi.primitives import deterministic, param, sample
from csvi.transforms import biject_to

__all__ = ["PyroModule", "PyroModuleList", "PyroParam", "PyroSample", "clear", "pyro_method",
           "to_pyro_module_"]


class PyroParam(NamedTuple):
    """A learnable attribute of a PyroModule with a constraint:
    `m.scale = PyroParam(np.ones(3), constraint=constraints.positive)`.
    `init_value` is an array, a Tensor or a callable returning one; `event_dim`
    as in csvi.param (inside a subsampled plate the dims left of it are
    subsampled).

    As Pyro's, also a decorator of a method giving the initial value, read
    like a property:

        class Model(PyroModule):
            @PyroParam(constraint=constraints.positive, event_dim=1)
            def scale(self):
                return np.ones(3)
    """

    init_value: Any = None
    constraint: Any = constraints.real
    event_dim: Optional[int] = None

    def __get__(self, obj, objtype=None):
        """The decorated method's attribute: made a PyroParam of `obj` (its
        initial value the method's result) on first read."""
        if obj is None:
            return self
        name = getattr(self.init_value, "__name__", None)
        if not callable(self.init_value) or name is None:
            raise TypeError(f"{type(obj).__name__}: a class attribute PyroParam must decorate "
                            "a method returning the initial value; assign other PyroParams "
                            "in __init__ (self.name = PyroParam(...))")
        if name not in obj.__dict__["_pyro_params"]:
            setattr(obj, name, PyroParam(functools.partial(self.init_value, obj),
                                         self.constraint, self.event_dim))
        return obj.__getattr__(name)

    def __call__(self, init_value):
        """`@PyroParam(constraint=..., event_dim=...)`: the decorator itself."""
        if self.init_value is not None:
            raise TypeError("PyroParam(...) with an init_value is not a decorator")
        return PyroParam(init_value, self.constraint, self.event_dim)


@dataclasses.dataclass(frozen=True)
class PyroSample:
    """A random attribute of a PyroModule: `m.weight = PyroSample(prior)`,
    where prior is a distribution, or a function of the module returning a
    distribution (a sample site) or a Tensor (a deterministic site)."""

    prior: Any

    def __set_name__(self, owner, name):
        object.__setattr__(self, "_name", name)  # the decorator form's attribute

    def __get__(self, obj, objtype=None):
        """`@PyroSample` on a method `def x(self): return dist...`: the method
        is the prior of the attribute `x`, drawn once per call as any."""
        if obj is None:
            return self
        name = self.__dict__.get("_name")
        if name is None:
            raise TypeError(f"{type(obj).__name__}: PyroSample used as a class attribute "
                            "without a name")
        obj.__dict__["_pyro_samples"].setdefault(name, self.prior)
        return obj.__getattr__(name)


class _Context:
    """Shared by a root PyroModule and its sub-PyroModules: while a call of
    any of them runs, each PyroSample attribute is drawn once and cached."""

    def __init__(self):
        self.active = 0
        self.cache = {}

    def __enter__(self):
        self.active += 1

    def __exit__(self, *exc):
        self.active -= 1
        if not self.active:
            self.cache.clear()


def _make_name(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class _PyroModuleMeta(type):
    """Makes `PyroModule[Linear]` a subclass of both (cached per class)."""

    _mixins = {}

    def __getitem__(cls, Base):
        if not (isinstance(Base, type) and issubclass(Base, Module)):
            raise TypeError(f"PyroModule[...] needs a csvi.nn.Module subclass, got {Base!r}")
        if issubclass(Base, PyroModule):
            return Base
        if Base is Module:
            return PyroModule
        mixin = _PyroModuleMeta._mixins.get(Base)
        if mixin is None:
            bases = tuple(PyroModule[b] for b in Base.__bases__ if issubclass(b, Module))
            mixin = type("Pyro" + Base.__name__, (Base,) + bases, {})
            _PyroModuleMeta._mixins[Base] = mixin
        return mixin


class PyroModule(Module, metaclass=_PyroModuleMeta):
    """A Module whose params and PyroSample attributes are read through the
    effect handlers while it (or its root PyroModule) is being called:

        class BayesianRegression(PyroModule):
            def __init__(self, in_features):
                super().__init__()
                self.linear = PyroModule[Linear](in_features, 1)
                self.linear.weight = PyroSample(
                    dist.Normal(0., 1.).expand([1, in_features]).to_event(2))
                self.linear.bias = PyroSample(dist.Normal(0., 10.).expand([1]).to_event(1))

            def forward(self, x, y=None):
                sigma = csvi.sample("sigma", dist.Uniform(0., 10.))
                mean = self.linear(x).squeeze(-1)
                with csvi.plate("data", x.shape[0]):
                    return csvi.sample("obs", dist.Normal(mean, sigma), obs=y)

    Names follow Pyro: "linear.weight" (prefixed by the root's `name` when
    given).  Plain params and PyroParams live in the param store under those
    names (the store's value wins over the module's, as in Pyro, and the two
    share one buffer from the first read); a plain Module attribute is
    registered with csvi.module under its name.  Outside a call, attributes
    read their own values and PyroSample attributes draw from the prior with
    no site.  Sub-PyroModules should be used through one root PyroModule.
    """

    def __init__(self, name=""):
        object.__setattr__(self, "_pyro_name", name)
        object.__setattr__(self, "_pyro_context", _Context())
        object.__setattr__(self, "_pyro_params", OrderedDict())
        object.__setattr__(self, "_pyro_samples", OrderedDict())
        super().__init__()

    def __call__(self, *args, **kwargs):
        with self._pyro_context:
            return super().__call__(*args, **kwargs)

    def _pyro_set_supermodule(self, name, context):
        object.__setattr__(self, "_pyro_name", name)
        object.__setattr__(self, "_pyro_context", context)
        for key, child in self._modules.items():
            if isinstance(child, PyroModule):
                child._pyro_set_supermodule(_make_name(name, key), context)

    def _fullname(self, name):
        return _make_name(self._pyro_name, name)

    def named_pyro_params(self, prefix="", recurse=True):
        """(dotted name, value) of every param as Pyro's: a PyroParam under its
        own name with its constrained value, a plain param as it is."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for attr, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                base = attr[:-len("_unconstrained")]
                if (isinstance(m, PyroModule) and attr.endswith("_unconstrained")
                        and base in m._pyro_params):
                    yield _make_name(mname, base), getattr(m, base)
                else:
                    yield _make_name(mname, attr), p

    # ---- writes -------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_pyro_params" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute '{name}'")
        if isinstance(value, PyroModule):
            self._drop(name)
            super().__setattr__(name, value)
            value._pyro_set_supermodule(self._fullname(name), self._pyro_context)
            return
        if isinstance(value, PyroParam):
            self._drop(name)
            init, constraint, event_dim = value
            if init is None:
                raise ValueError(f"{self.describe()}: PyroParam '{name}' needs an init_value")
            self._pyro_params[name] = (constraint, event_dim)
            if self._pyro_context.active:
                param(self._fullname(name), init, constraint, event_dim)
                self._bind(name + "_unconstrained", get_param_store().leaf(self._fullname(name)))
                return
            if callable(init) and not _core.is_tensor(init):
                init = init()
            with _core.off_tape():
                u = biject_to(constraint).inv(_core.value_of(init))
                super().__setattr__(name + "_unconstrained", Parameter(_core.value_of(u)))
            return
        if isinstance(value, Parameter):
            self._drop(name)
            super().__setattr__(name, value)
            if self._pyro_context.active:
                self._sync_param(name, name, constraints.real, None)
            return
        if isinstance(value, PyroSample):
            self._drop(name)
            self._pyro_samples[name] = value.prior
            return
        if name in self._pyro_params and (_core.is_tensor(value) or hasattr(value, "shape")):
            self._set_pyro_param_value(name, value)
            return
        super().__setattr__(name, value)

    def _set_pyro_param_value(self, name, value):
        """`m.scale = new_value` of an existing PyroParam: write its
        unconstrained value in place."""
        constraint, _ = self._pyro_params[name]
        held = _core.value_of(self._parameters[name + "_unconstrained"])
        with _core.off_tape():
            u = _core.value_of(biject_to(constraint).inv(_core.value_of(value)))
        if u.shape != held.shape:
            raise ValueError(f"{self.describe()}: PyroParam '{name}' has shape {held.shape}, "
                             f"cannot assign a value of shape {u.shape}")
        held[...] = u

    def _drop(self, name):
        """Forget any earlier attribute `name` (of any kind) on this module."""
        self._pyro_params.pop(name, None)
        self._pyro_samples.pop(name, None)
        self._parameters.pop(name + "_unconstrained", None)
        self._discard(name)

    def __delattr__(self, name):
        if name in self._pyro_params or name in self._pyro_samples:
            self._drop(name)
            return
        super().__delattr__(name)

    # ---- reads --------------------------------------------------------------
    def __getattr__(self, name):
        d = self.__dict__
        if "_pyro_params" in d and name in d["_pyro_params"]:
            constraint, event_dim = d["_pyro_params"][name]
            if self._pyro_context.active:
                self._sync_param(name, name + "_unconstrained", constraint, event_dim)
                return param(self._fullname(name), event_dim=event_dim)
            return biject_to(constraint)(d["_parameters"][name + "_unconstrained"])
        if "_pyro_samples" in d and name in d["_pyro_samples"]:
            return self._sample_attr(name, d["_pyro_samples"][name])
        result = super().__getattr__(name)
        if self._pyro_context.active:
            if isinstance(result, PyroModule):
                pass
            elif isinstance(result, Module):
                register_module(self._fullname(name), result)
            elif name in d["_parameters"] and result is not None and result.requires_grad:
                self._sync_param(name, name, constraints.real, None)
                result = d["_parameters"][name]
        return result

    def _sync_param(self, name, attr, constraint, event_dim):
        """Make the module's `attr` the param store's leaf of this attribute,
        creating the store's entry from the module's value when it is new,
        and emit its param site."""
        store = get_param_store()
        fullname = self._fullname(name)
        held = self._parameters[attr]
        if fullname not in store:
            with _core.off_tape():
                init = _core.value_of(biject_to(constraint)(_core.value_of(held))).copy()
            store.get_param(fullname, init, constraint)
        leaf = store.leaf(fullname)
        if leaf is not held:
            if tuple(leaf.shape) != tuple(held.shape):
                raise ValueError(
                    f"{self.describe()}: param '{name}' has unconstrained shape "
                    f"{tuple(held.shape)}, but the param store holds '{fullname}' with shape "
                    f"{tuple(leaf.shape)} (registered earlier under this name, or loaded); "
                    "clear the param store or rename the module")
            self._bind(attr, leaf)
        if attr == name:  # a plain param: the site here (a PyroParam's is the caller's)
            param(fullname, event_dim=event_dim)

    def _sample_attr(self, name, prior):
        context = self._pyro_context
        if not context.active:
            if not hasattr(prior, "sample"):
                prior = prior(self)
            return prior if _core.is_tensor(prior) else prior()
        fullname = self._fullname(name)
        value = context.cache.get(fullname)
        if value is None:
            if not hasattr(prior, "sample"):
                prior = prior(self)
            if _core.is_tensor(prior):
                value = deterministic(fullname, prior)
            else:
                value = sample(fullname, prior)
            context.cache[fullname] = value
        return value


class PyroModuleList(ModuleList, PyroModule):
    """PyroModule[ModuleList]: its modules named by their index under the
    list's own name ("layers.0.weight").  A slice is a plain ModuleList of
    the same modules, so it does not rename them (as Pyro's)."""

    def __init__(self, modules=None):
        super().__init__(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return super().__getitem__(index)


_PyroModuleMeta._mixins[ModuleList] = PyroModuleList


def to_pyro_module_(m, recurse=True):
    """Make the Module `m` a PyroModule in place (its class becomes
    PyroModule[type(m)]), and its submodules too with `recurse`: a network
    built elsewhere can then take PyroSample priors on its params."""
    if not isinstance(m, Module):
        raise TypeError(f"to_pyro_module_: expected a csvi.nn.Module, got {type(m).__name__}")
    if not isinstance(m, PyroModule):
        m.__class__ = PyroModule[type(m)]
        object.__setattr__(m, "_pyro_name", "")
        object.__setattr__(m, "_pyro_context", _Context())
        object.__setattr__(m, "_pyro_params", OrderedDict())
        object.__setattr__(m, "_pyro_samples", OrderedDict())
        for name, p in list(m._parameters.items()):
            if p is not None:
                setattr(m, name, p)
    for name, child in list(m._modules.items()):
        if child is None:
            continue
        if recurse:
            to_pyro_module_(child)
        setattr(m, name, child)


def pyro_method(fn):
    """Decorates a PyroModule method other than forward so that, like a call,
    it reads attributes through the handlers and draws each PyroSample once."""
    import functools

    @functools.wraps(fn)
    def wrapped(self, *args, **kwargs):
        with self._pyro_context:
            return fn(self, *args, **kwargs)

    return wrapped


def clear(mod):
    """Remove a PyroModule's params, PyroParams and submodules from both the
    module and the param store."""
    if not isinstance(mod, PyroModule):
        raise TypeError(f"clear: expected a PyroModule, got {type(mod).__name__}")
    store = get_param_store()
    prefix = mod._pyro_name
    for name in list(mod._pyro_params) + list(mod._parameters):
        base = name[:-len("_unconstrained")] if name.endswith("_unconstrained") else name
        full = _make_name(prefix, base)
        if full in store:
            del store[full]
        mod._drop(base)
    for name in list(mod._modules):
        full = _make_name(prefix, name)
        for key in [k for k in store.keys() if k == full or k.startswith(full + ".")
                    or k.startswith(full + "$$$")]:
            del store[key]
        mod._discard(name)
