"""Sequential: layers applied one after another, named "0", "1", ..."""
from collections import OrderedDict

from csvi.nn.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Sequential(layer, layer, ...) or Sequential(OrderedDict(name=layer, ...));
    calling it feeds each layer's output to the next.  Indexing gives a layer
    (`seq[0]`) or a Sequential of a slice; len() counts the layers."""

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
        for m in self._modules.values():
            input = m(input)
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
