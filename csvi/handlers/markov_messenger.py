"""markov: declare that a chain's sites depend only on the last few steps
(Pyro's `pyro.markov`), so enumeration can recycle their dims.

Each entry into the context opens a new frame; a site sees the sites of its
own frame and of the `history` frames before it (`infer["_markov_scope"]`,
site name -> count).  EnumMessenger reuses the dim of an enumerated site
once no open scope sees it, so a length-T chain of K-state variables needs
history + 1 dims and costs O(T K^2) to sum out, not K^T."""
from collections import Counter
from contextlib import ExitStack

from csvi.handlers.messenger import Messenger

__all__ = ["MarkovMessenger", "markov"]


class MarkovMessenger(Messenger):
    """The markov context (see the module docstring).  Reentrant: iterating
    `markov(range(T))` enters it once per step without leaving, stacking the
    steps' frames; it sits on the handler stack once."""

    def __init__(self, fn=None, history=1, keep=False, dim=None, name=None):
        super().__init__(fn)
        if isinstance(history, bool) or int(history) != history or history < 0:
            raise ValueError(f"markov: history must be a nonnegative integer, got {history!r}")
        if dim is not None or name is not None:
            raise ValueError("markov: vectorized markov chains (dim=, name=) are not "
                             "supported (nor are they in Pyro); iterate over the steps")
        self.history = int(history)
        self.keep = bool(keep)
        self._iterable = None
        self._pos = -1
        self._frames = []  # one set of site names per open (or kept) step
        self._entered = 0

    def generator(self, iterable):
        self._iterable = iterable
        return self

    def __iter__(self):
        if self._iterable is None:
            raise TypeError("markov: iterate over markov(iterable), e.g. markov(range(T))")
        with ExitStack() as stack:
            for value in self._iterable:
                stack.enter_context(self)
                yield value

    def __enter__(self):
        self._pos += 1
        if len(self._frames) <= self._pos:
            self._frames.append(set())
        self._entered += 1
        if self._entered == 1:
            return super().__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.keep:
            self._frames.pop()
        self._pos -= 1
        self._entered -= 1
        if self._entered == 0:
            return super().__exit__(exc_type, exc, tb)
        return False

    def process_message(self, msg):
        if msg.type != "sample" or msg.done:
            return
        infer = msg.infer = dict(msg.infer)
        scope = infer["_markov_scope"] = Counter(infer.get("_markov_scope", ()))
        for pos in range(max(0, self._pos - self.history), self._pos + 1):
            scope.update(self._frames[pos])
        infer["_markov_depth"] = 1 + infer.get("_markov_depth", 0)
        self._frames[self._pos].add(msg.name)


def markov(fn=None, history=1, keep=False, dim=None, name=None):
    """Markov dependency declaration, Pyro's three forms:

    - `for t in csvi.markov(range(T)):` -- each step sees the `history` before it;
    - `with csvi.markov():` -- one step, e.g. in a recursive model;
    - `csvi.markov(fn)` -- `fn`'s body is one step.

    `keep=True` keeps frames of exited steps visible to their neighbours
    (branching models)."""
    if fn is None:
        return MarkovMessenger(history=history, keep=keep, dim=dim, name=name)
    if callable(fn):
        return MarkovMessenger(fn, history=history, keep=keep, dim=dim, name=name)
    return MarkovMessenger(history=history, keep=keep, dim=dim, name=name).generator(fn)
