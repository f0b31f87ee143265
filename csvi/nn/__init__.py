"""Neural networks for amortized guides and Bayesian layers: torch.nn's
Module, Linear, Sequential and activations as csvi tape ops, `functional`
forms, and Pyro's PyroModule / PyroParam / PyroSample.  Register a network's
params with `csvi.module(name, net)` in the model or guide that uses it."""
from csvi.nn import functional
from csvi.nn.activation import ELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from csvi.nn.container import ModuleList, Sequential
from csvi.nn.dropout import Dropout
from csvi.nn.linear import Linear
from csvi.nn.module import Module, Parameter
from csvi.nn.primitive import module
from csvi.nn.products import get_product_tasks, set_product_tasks
from csvi.nn.pyro_module import (PyroModule, PyroModuleList, PyroParam, PyroSample, clear,
                                  pyro_method, to_pyro_module_)

__all__ = ["ELU", "Dropout", "LeakyReLU", "Linear", "Module", "ModuleList", "Parameter",
           "PyroModule", "PyroModuleList", "PyroParam", "PyroSample", "ReLU", "Sequential",
           "Sigmoid", "Softplus", "Tanh", "clear", "functional", "get_product_tasks", "module",
           "pyro_method", "set_product_tasks", "to_pyro_module_"]
