"""enum: parallel enumeration of discrete sites (Pyro's `poutine.enum`).

A site marked `infer={"enumerate": "parallel"}` takes every value of its
support at once, along a new batch dim to the left of all plates; whatever
is computed from it inherits that dim, so one run of the model evaluates
every assignment.  Each enumerated variable gets a unique id as well as a
dim: inside `csvi.markov` a dim is recycled once the variable holding it has
left the markov window, and the ids tell TraceEnum_ELBO which variable a dim
means at each site (`infer["_dim_to_id"]`, Pyro's field)."""
import numpy as np

from csvi import _core
from csvi.handlers.messenger import Messenger

__all__ = ["EnumMessenger", "EnumAllocator"]


class EnumAllocator:
    """Hands out enumeration dims and variable ids for one guide/model pair.

    A global dim (a variable outside any markov context) is never reused;
    a local dim (inside `markov`) is the rightmost free dim not held by a
    variable still in the site's markov scope."""

    def __init__(self, first_available_dim):
        self.first_available_dim = first_available_dim  # plates live right of it
        self.next_available_dim = first_available_dim
        self.next_available_id = 0
        self.dim_to_id = {}  # the global variables' dims

    def allocate(self, scope_dims=None):
        id_ = self.next_available_id
        self.next_available_id += 1
        dim = self.next_available_dim
        if scope_dims is None:
            self.next_available_dim -= 1
            self.dim_to_id[dim] = id_
        else:
            while dim in scope_dims:
                dim -= 1
        return dim, id_

    def state(self):
        return self.next_available_dim, self.next_available_id, dict(self.dim_to_id)

    def restore(self, state):
        self.next_available_dim, self.next_available_id, dim_to_id = state
        self.dim_to_id = dict(dim_to_id)


class EnumMessenger(Messenger):
    """Enumerates sites marked `infer={"enumerate": "parallel"}` (see the
    module docstring).  `first_available_dim` is the rightmost dim free for
    enumeration, `-1 - max_plate_nesting` (Pyro's argument); `allocator`
    lets a model continue the guide's dims and ids (TraceEnum_ELBO)."""

    def __init__(self, fn=None, first_available_dim=None, allocator=None):
        super().__init__(fn)
        if allocator is None:
            if first_available_dim is None or isinstance(first_available_dim, bool) or \
                    int(first_available_dim) != first_available_dim or first_available_dim >= 0:
                raise ValueError("enum: first_available_dim must be a negative integer "
                                 "(-1 - max_plate_nesting), got " f"{first_available_dim!r}")
            allocator = EnumAllocator(int(first_available_dim))
        self.allocator = allocator
        self._markov_depths = {}  # site name -> its markov depth
        self._value_dims = {}  # site name -> {enum dim: id} its value carries
        self._param_dims = {}  # site name -> {enum dim: id} visible at the site

    def __enter__(self):
        self._markov_depths, self._value_dims, self._param_dims = {}, {}, {}
        self._entry_state = self.allocator.state()
        return super().__enter__()

    def _reset(self):
        """An abandoned run (handlers.queue) gives its dims and ids back."""
        self._markov_depths, self._value_dims, self._param_dims = {}, {}, {}
        self.allocator.restore(self._entry_state)

    def process_message(self, msg):
        if msg.type != "sample":
            return
        msg.infer = dict(msg.infer)  # the fields below are this run's, not the user's dict's
        scope = msg.infer.get("_markov_scope")
        param_dims = dict(self.allocator.dim_to_id)
        if scope is not None:
            for name, depth in scope.items():
                if self._markov_depths.get(name) == depth:  # its markov context is open
                    param_dims.update(self._value_dims.get(name, {}))
            self._markov_depths[msg.name] = msg.infer["_markov_depth"]
        self._param_dims[msg.name] = param_dims
        self._check_plates(msg)
        if msg.done or msg.is_observed or msg.infer.get("enumerate") != "parallel":
            return
        fn = msg.fn
        if not getattr(fn, "has_enumerate_support", False):
            raise ValueError(
                f"site '{msg.name}': {type(fn).__name__} has no finite support to enumerate "
                "(only discrete families with bounded support, e.g. Bernoulli, Categorical, "
                "Binomial, can be); remove infer={'enumerate': ...} from this site or draw "
                "it in the guide")
        dim, id_ = self.allocator.allocate(None if scope is None else set(param_dims))
        msg.value = self._enumerated_value(msg, dim)
        value_dims = {d: i for d, i in param_dims.items()
                      if _size_at(msg.value, d - fn.event_dim) > 1}
        value_dims[dim] = id_
        msg.infer["_enumerate_dim"] = dim
        msg.infer["_dim_to_id"] = value_dims
        msg.done = True

    def _check_plates(self, msg):
        limit = self.allocator.first_available_dim
        for frame in msg.cond_indep_stack:
            if frame.dim is not None and frame.dim <= limit:
                raise ValueError(
                    f"site '{msg.name}' is in plate '{frame.name}' at dim {frame.dim}, but "
                    f"max_plate_nesting={-1 - limit} allows only {-1 - limit} plate dims "
                    "(enumeration uses the dims left of them); raise max_plate_nesting to "
                    f"{-frame.dim}")

    def _enumerated_value(self, msg, dim):
        """The support along `dim` (size 1 elsewhere), after checking that the
        site's distribution does not already vary along that dim -- which
        happens when a markov window is too short for what the site reads."""
        fn = msg.fn
        batch = tuple(fn.batch_shape)
        if len(batch) >= -dim and batch[dim] > 1:
            raise ValueError(
                f"site '{msg.name}': enumerating it at dim {dim}, but its distribution "
                f"already has size {batch[dim]} there (batch_shape {batch}): it depends on "
                "an enumerated site that has left its markov window; raise the history of "
                "csvi.markov (e.g. markov(..., history=2)) or the model's max_plate_nesting")
        support = _core.astensor(fn.enumerate_support(expand=False))
        size = support.shape[0]
        event = tuple(support.shape[1 + len(batch):])
        value = _core.reshape(support, (size,) + (1,) * (-dim - 1) + event)
        if msg.infer.get("expand", False):  # carry the batch dims too, as Pyro's expand=True
            value = _core.broadcast_to(value, _core.broadcast_shapes(
                tuple(value.shape), batch + event))
        if support.dtype == np.int64:  # category indices stay integer Tensors
            value = _core.mark_integer(value)
        return value

    def postprocess_message(self, msg):
        if msg.type != "sample" or msg.value is None:
            return
        dim_to_id = msg.infer.setdefault("_dim_to_id", {})
        dim_to_id.update(self._param_dims.get(msg.name, {}))
        event_dim = getattr(msg.fn, "event_dim", 0)
        self._value_dims[msg.name] = {d: i for d, i in dim_to_id.items()
                                      if _size_at(msg.value, d - event_dim) > 1}


def _size_at(value, dim):
    shape = tuple(getattr(value, "shape", ()))
    return shape[dim] if len(shape) >= -dim else 1
