"""csvi.module: the primitive that puts a Module's params in the param store,
as pyro.module, so the optimizer, checkpoints and compiled runs treat a
network's weights like any other param."""
import numpy as np

from csvi import _core, constraints
from csvi.nn.linear import Linear
from csvi.nn.module import Module
from csvi.params import get_param_store
from csvi.primitives import param

__all__ = ["module", "param_with_module_name", "MODULE_NAMESPACE_DIVIDER"]

MODULE_NAMESPACE_DIVIDER = "$$$"


def param_with_module_name(module_name, param_name):
    """The param store name of a module's param: "encoder$$$fc1.weight"."""
    return module_name + MODULE_NAMESPACE_DIVIDER + param_name


def module(name, nn_module, update_module_params=False):
    """Register every trainable param of `nn_module` as the param
    `name$$$<dotted param name>` and return the module; call it in the model
    or guide that uses the module, every time (as pyro.module), so each step's
    trace has the param sites the optimizer updates.

    After the call the module's params *are* the store's leaves (one buffer),
    so the optimizer's updates, `get_param_store().load(...)` and
    `load_state_dict` are seen by both.  When the store already holds a param
    of that name in another buffer (the module was rebuilt, or the params were
    loaded into a fresh store), `update_module_params=True` makes the module
    take the store's values, and the default False writes the module's values
    into the store's entry.  (Pyro, with False, would leave the store's
    tensor -- the one it trains -- apart from the module's, which is then
    never trained.)  Params made with `requires_grad=False` stay out of the
    store.  A param whose shape differs from the store's entry of its name
    raises, naming the module, the layer and both shapes, before any param is
    touched.  The params of a Linear that multiplies in float32
    (`module.float()`) are marked so, and Adam keeps their moments in
    float32, as torch's Adam does after `.float()`; its updates then leave
    float32 values in the params' float64 arrays.

        >>> import csvi
        >>> from csvi import nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> _ = csvi.module("net", net)
        >>> sorted(csvi.get_param_store().keys())
        ['net$$$0.bias', 'net$$$0.weight', 'net$$$2.bias', 'net$$$2.weight']
        >>> net[0].weight is csvi.get_param_store().leaf("net$$$0.weight")
        True
    """
    if isinstance(nn_module, type):
        raise TypeError(f"csvi.module('{name}'): pass a module instance, not the class "
                        f"{nn_module.__name__}")
    if not isinstance(nn_module, Module):
        raise TypeError(f"csvi.module('{name}'): expected a csvi.nn.Module, got "
                        f"{type(nn_module).__name__}")
    if not isinstance(name, str) or not name or MODULE_NAMESPACE_DIVIDER in name:
        raise ValueError(f"csvi.module: the name must be a nonempty string without "
                         f"'{MODULE_NAMESPACE_DIVIDER}', got {name!r}")
    if nn_module._where[:2] != (name, ""):
        nn_module._place(name, "", type(nn_module).__name__)
    store = get_param_store()
    plan = []
    for pname, owner, attr, p in nn_module._param_slots():
        if not p.requires_grad:
            continue
        full = param_with_module_name(name, pname)
        if full not in store:
            plan.append((full, owner, attr, p, "new"))
            continue
        if store.leaf(full) is p:
            plan.append((full, owner, attr, p, "bound"))
            continue
        held = store.unconstrained(full)
        if held.shape != tuple(p.shape):
            raise ValueError(
                f"csvi.module('{name}'): param '{attr}' of {owner.describe()} has shape "
                f"{tuple(p.shape)}, but the param store holds '{full}' with shape "
                f"{held.shape} (registered earlier under this name, or loaded); register "
                f"the module under another name, or remove the old param "
                f"(del csvi.get_param_store()['{full}'], or csvi.clear_param_store())")
        if store.constraint(full) is not constraints.real:
            raise ValueError(
                f"csvi.module('{name}'): the param store holds '{full}' with constraint "
                f"{store.constraint(full)!r}, but param '{attr}' of {owner.describe()} "
                "is unconstrained; a module's params must be real")
        plan.append((full, owner, attr, p, "other"))
    for full, owner, attr, p, state in plan:
        if state == "new":
            store.get_param(full, _core.value_of(p))
        elif state == "other" and not update_module_params:
            store.unconstrained(full)[...] = _core.value_of(p)
        if state != "bound":
            owner._bind(attr, store.leaf(full))
        store.mark_float32(full, isinstance(owner, Linear) and owner.dtype == np.float32)
        param(full)  # the site each step's trace lists for the optimizer
    return nn_module
