"""Module: a tree of named params and submodules, torch.nn.Module's interface.

Why a class of its own: a network is many params; a Module names them
(`fc1.weight`), so `csvi.module("encoder", net)` can put each one in the param
store under one predictable name (`encoder$$$fc1.weight`), and so errors can
say which layer of which module is at fault.  A param is a leaf Tensor; once
registered it is the store's own leaf, so the optimizer's in-place updates are
what the next forward reads and gradients land where SVI looks for them.
"""
from collections import OrderedDict

import numpy as np

from csvi import _core

__all__ = ["Module", "Parameter"]


class Parameter(_core.Tensor):
    """A learnable leaf Tensor (a float64 copy of `data`) that a Module
    assignment registers as a param, as torch.nn.Parameter.  With
    `requires_grad=False` it is a frozen param: saved with the module, never
    put in the param store, never trained."""

    def __init__(self, data, requires_grad=True):
        super().__init__(_core.value_of(data), requires_grad=requires_grad)


class Module:
    """Base class of every layer and network (torch.nn.Module's interface).

    Subclasses call `super().__init__()` first, assign params (`Parameter`)
    and submodules as attributes, and define `forward`; calling the module
    runs `forward`.  `named_parameters()` walks the tree in assignment order.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        # where this module sits, for error messages: (root label, dotted path)
        object.__setattr__(self, "_where", (None, "", None))

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- attributes: params and submodules ----------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute '{name}'")
        params, modules = self._parameters, self._modules
        if isinstance(value, Parameter):
            self._discard(name)
            params[name] = value
        elif isinstance(value, Module):
            self._discard(name)
            modules[name] = value
            value._place(self._where[0], _join(self._where[1], name), self._root_type())
        elif name in params:
            if value is not None:
                raise TypeError(f"{self.describe()}: cannot assign {type(value).__name__} to "
                                f"param '{name}' (a csvi.nn.Parameter or None is expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"{self.describe()}: cannot assign {type(value).__name__} to "
                                f"submodule '{name}' (a csvi.nn.Module or None is expected)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if "_parameters" in d and name in d["_parameters"]:
            return d["_parameters"][name]
        if "_modules" in d and name in d["_modules"]:
            return d["_modules"][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def _discard(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)

    def register_parameter(self, name, param):
        """Add `param` (a Parameter, or None for an absent one such as a
        bias-free layer's bias) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{self.describe()}: register_parameter('{name}') needs a "
                            f"csvi.nn.Parameter or None, got {type(param).__name__}")
        if "." in name or not name:
            raise ValueError(f"{self.describe()}: bad param name {name!r}")
        self._discard(name)
        self._parameters[name] = param

    def add_module(self, name, module):
        """Add `module` (or None) as the submodule `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{self.describe()}: add_module('{name}') needs a csvi.nn.Module "
                            f"or None, got {type(module).__name__}")
        if "." in name or not name:
            raise ValueError(f"{self.describe()}: bad submodule name {name!r}")
        if module is None:
            self._discard(name)
            self._modules[name] = None
        else:
            setattr(self, name, module)

    # ---- naming, for messages -----------------------------------------------
    def _root_type(self):
        return self._where[2] or type(self).__name__

    def _place(self, root, path, root_type):
        """Record where this module (and everything under it) sits."""
        object.__setattr__(self, "_where", (root, path, root_type))
        for name, child in self._modules.items():
            if child is not None:
                child._place(root, _join(path, name), root_type)

    def describe(self):
        """Which layer of which module this is, e.g. "layer 'fc1' (Linear(...))
        of module 'encoder'"."""
        root, path, _ = self._where
        me = f"{type(self).__name__}({self.extra_repr()})"
        owner = f"module '{root}'" if root is not None else \
            f"an unregistered {self._root_type()}"
        if path:
            return f"layer '{path}' ({me}) of {owner}"
        return f"{owner} ({me})" if root is not None else f"an unregistered {me}"

    # ---- walking the tree ---------------------------------------------------
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix=""):
        """(dotted name, module) of this module and every submodule, each once."""
        seen = set()

        def walk(m, prefix):
            if id(m) in seen:
                return
            seen.add(id(m))
            yield prefix, m
            for name, child in m.named_children():
                yield from walk(child, _join(prefix, name))

        yield from walk(self, prefix)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, param) of every param, each once (a param shared by
        two layers is listed under its first name), as torch."""
        for name, _, _, p in self._param_slots(prefix, recurse):
            yield name, p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def _param_slots(self, prefix="", recurse=True):
        """(dotted name, owning module, attribute, param) of every param."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for attr, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield _join(mname, attr), m, attr, p

    def _bind(self, attr, leaf):
        """Make param `attr` the Tensor `leaf` (the param store's own)."""
        self._parameters[attr] = leaf

    # ---- state --------------------------------------------------------------
    def state_dict(self):
        """{dotted name: a NumPy copy of the param's value}, in walk order;
        `np.savez(path, **m.state_dict())` saves it."""
        return OrderedDict((name, _core.value_of(p).copy())
                           for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from `state_dict` into the params, in place (so the
        param store, optimizers and compiled programs that share a param's
        buffer see them).  Every shape is checked before any value is written.
        With `strict`, the keys must be exactly this module's params; without,
        missing and unexpected keys are returned as (missing, unexpected)."""
        own = OrderedDict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict into {self.describe()}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        pending = []
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = np.asarray(_core.value_of(state_dict[name]), dtype=np.float64)
            if value.shape != p.shape:
                owner = self._owner_of(name)
                raise ValueError(f"load_state_dict: param '{name.rsplit('.', 1)[-1]}' of "
                                 f"{owner.describe()} has shape {tuple(p.shape)}, but the "
                                 f"state dict's '{name}' has shape {value.shape}")
            pending.append((p, value))
        for p, value in pending:
            _core.value_of(p)[...] = value
        return missing, unexpected

    def _owner_of(self, dotted):
        m = self
        for part in dotted.split(".")[:-1]:
            m = m._modules[part]
        return m

    def train(self, mode=True):
        """Training mode (Dropout drops) for this module and every submodule."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (Dropout passes its input through); same as train(False)."""
        return self.train(False)

    def float(self):
        """torch's way to run a network in float32: every Linear in this module
        multiplies in float32 (`Linear(..., dtype=np.float32)`).  Params,
        optimizer state and elementwise work stay float64."""
        for m in self.modules():
            m._multiply_in("float32")
        return self

    def double(self):
        """Every Linear in this module multiplies in float64 (the default)."""
        for m in self.modules():
            m._multiply_in("float64")
        return self

    def _multiply_in(self, dtype):
        """The precision of this layer's own matrix products: layers that have
        them (Linear) override this."""

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    # ---- printing -----------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items() if m is not None]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name
