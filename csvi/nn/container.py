"""Sequential: layers applied one after another, named "0", "1", ..."""
from collections import OrderedDict

from csvi.nn.activation import ReLU, Sigmoid, Softplus, Tanh
from csvi.nn.linear import Linear
from csvi.nn.module import Module

__all__ = ["ModuleList", "Sequential"]

# exactly these types: a subclass may change forward
_FUSED_AFTER_LINEAR = (ReLU, Sigmoid, Softplus, Tanh)


class Sequential(Module):
    """Sequential(layer, layer, ...) or Sequential(OrderedDict(name=layer, ...));
    calling it feeds each layer's output to the next.  Indexing gives a layer
    (`seq[0]`) or a Sequential of a slice; len() counts the layers.

    A Linear followed by ReLU, Sigmoid, Tanh or Softplus (beta 1) runs as one
    fused record (`Linear.forward_activated`): the same values, one pass fewer
    over the output each way."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            items = list(layers[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(layers)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: layer '{name}' is a {type(m).__name__}, not a "
                                "csvi.nn.Module")
            self.add_module(name, m)

    def forward(self, input):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            m = layers[i]
            if (type(m) is Linear and i + 1 < len(layers)
                    and type(layers[i + 1]) in _FUSED_AFTER_LINEAR):
                input = m.forward_activated(input, layers[i + 1])
                i += 2
            else:
                input = m(input)
                i += 1
        return input

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            part = Sequential()  # the same layers, keeping their names and places
            part._modules.update(list(self._modules.items())[index])
            return part
        return list(self._modules.values())[index]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of submodules named "0", "1", ... (torch.nn.ModuleList): their
    params are the list's, it has no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index, module):
        self.add_module(self._key(index), module)

    def _key(self, index):
        n = len(self)
        i = index + n if -n <= index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"ModuleList: index {index} out of range for {n} modules")
        return list(self._modules)[i]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: call its modules")
