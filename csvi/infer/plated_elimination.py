"""Summing enumerated variables out of a plated factor graph in log space
(tensor variable elimination, Obermeyer et al. 2019), as TraceEnum_ELBO and
infer_discrete need it.

A `Factor` is a log-density tensor laid out as one leading dim per
enumerated variable it depends on (named by the variable's id, not by its
physical dim, which markov chains recycle) followed by the model's plate
dims.  `eliminate` works plate level by plate level, deepest first: at each
level it sums out, one variable at a time in greedy min-size order, the
variables that live at that level, then multiplies (adds, in log space) the
result over the plates its remaining variables are not in and hands it to
the level above.  A chain of T K-state variables so costs O(T K^2); no
tensor over all assignments is ever built."""
import math

from csvi import _core

__all__ = ["Factor", "eliminate", "combine", "site_variables"]


class Factor:
    """`tensor` with leading dims for `ids` (in order) and then `nesting`
    plate dims; `plates` the frozenset of plate frames it lives in."""

    __slots__ = ("tensor", "ids", "plates", "nesting")

    def __init__(self, tensor, ids, plates, nesting):
        self.tensor = tensor
        self.ids = tuple(ids)
        self.plates = plates
        self.nesting = nesting

    @classmethod
    def from_site(cls, name, log_prob, dim_to_id, plates, nesting, product_over=()):
        """The factor of a site's log_prob, whose dims left of the `nesting`
        plate dims are enumeration dims named by `dim_to_id`; multiplied
        over the plates `product_over` first (see plate_product), which
        then rearranges the smaller product."""
        t = _core.astensor(log_prob)
        ids, sizes = site_variables(name, t.shape, dim_to_id, nesting)
        if t.ndim < nesting:
            t = _reshaped(t, (1,) * (nesting - t.ndim) + tuple(t.shape))
        frames = [f for f in product_over if f in plates]
        if frames:
            t = _plate_sum(t, frames, t.ndim - nesting, nesting)
            plates = plates - frozenset(frames)
        tail = tuple(t.shape[t.ndim - nesting:])
        return cls(_reshaped(t, tuple(sizes) + tail), ids, plates, nesting)

    @property
    def sizes(self):
        return dict(zip(self.ids, self.tensor.shape[:len(self.ids)]))

    def arranged(self, ids):
        """The tensor with its variable dims in the order of `ids` (a
        superset of its own), size 1 for those it lacks."""
        own = self.ids
        present = [i for i in ids if i in own]
        t = self.tensor
        if present != list(own):
            perm = [own.index(i) for i in present]
            perm += list(range(len(own), len(own) + self.nesting))
            t = _core.transpose(t, perm)
        if len(present) == len(ids):
            return t
        sizes = self.sizes
        shape = tuple(sizes[i] if i in sizes else 1 for i in ids)
        return _reshaped(t, shape + tuple(t.shape[len(own):]))

    def plate_product(self, frames):
        """Multiply over the plates `frames` (sum their dims in log space),
        leaving this factor in the plates it keeps."""
        frames = [f for f in frames if f in self.plates]
        if not frames:
            return self
        t = _plate_sum(self.tensor, frames, len(self.ids), self.nesting)
        return Factor(t, self.ids, self.plates - frozenset(frames), self.nesting)


def site_variables(name, shape, dim_to_id, nesting):
    """(ids, sizes) of the enumerated variables along the dims of a site's
    log_prob `shape` left of its `nesting` plate dims."""
    given = tuple(shape)
    shape = (1,) * (nesting - len(given)) + given
    ids, sizes = [], []
    for axis, size in enumerate(shape[:len(shape) - nesting]):
        if size == 1:
            continue
        dim = axis - len(shape)
        if dim not in dim_to_id:
            raise ValueError(
                f"site '{name}': its log_prob has shape {given}, with size "
                f"{size} at dim {dim}, left of the {nesting} plate dims "
                f"(max_plate_nesting={nesting}), where no enumerated variable lives; "
                "declare that batch dim with a plate (inside max_plate_nesting) or "
                "make it an event dim with .to_event()")
        ids.append(dim_to_id[dim])
        sizes.append(size)
    return ids, sizes


def _plate_sum(t, frames, lead, nesting):
    """t summed (keeping dims) over the plates `frames`, whose dims follow
    `lead` leading dims; a plate along which t is constant (size 1) but
    which is subsampled multiplies it by the subsample size instead (a
    product of identical terms)."""
    axes, repeat = [], 1.0
    for f in frames:
        axis = lead + nesting + f.dim
        if t.shape[axis] == 1 and (f.subsample_size or 1) > 1:
            repeat *= f.subsample_size
        axes.append(axis)
    t = _core.sum(t, axis=tuple(axes), keepdims=True)
    return t * repeat if repeat != 1.0 else t


def _reshaped(t, shape):
    """t in `shape`; t itself (no copy recorded) when it has that shape."""
    return t if tuple(t.shape) == shape else _core.reshape(t, shape)


def combine(factors):
    """The product (log-space sum) of factors, over the union of their
    variables."""
    if len(factors) == 1:
        return factors[0]
    ids = []
    for f in factors:
        ids.extend(i for i in f.ids if i not in ids)
    total = None
    for f in factors:
        t = f.arranged(ids)
        total = t if total is None else total + t
    plates = frozenset().union(*(f.plates for f in factors))
    return Factor(total, ids, plates, factors[0].nesting)


def _sum_out_all(group, group_vars, trail, maximize):
    """Sum `group_vars` out of the product of `group`, one variable at a
    time, each time the one whose joint factor is smallest (min-size greedy
    order: the end of a chain first).  Returns the remaining factors; each
    (variable, joint factor) summed is appended to `trail` if given."""
    holders = {v: [] for v in group_vars}
    for f in group:
        for v in f.ids:
            if v in holders:
                holders[v].append(f)
    alive = list(group)
    while holders:
        var = min(holders, key=lambda v: (_joint_size(holders[v]), v))
        sources = holders.pop(var)
        if trail is None and not maximize and 2 <= len(sources) <= 3:
            reduced = _sum_out(sources, var)
        else:
            joint = combine(sources)
            if trail is not None:
                trail.append((var, joint))
            axis = joint.ids.index(var)
            reduce = _core.amax if maximize else _core.logsumexp
            reduced = Factor(reduce(joint.tensor, axis=axis),
                             joint.ids[:axis] + joint.ids[axis + 1:], joint.plates,
                             joint.nesting)
        used = {id(f) for f in sources}
        alive = [f for f in alive if id(f) not in used]
        alive.append(reduced)
        for v in reduced.ids:
            if v in holders:
                holders[v] = [f for f in holders[v] if id(f) not in used] + [reduced]
    return alive


def _sum_out(sources, var):
    """`var` summed out of the product of `sources` as one op, the joint
    never built on the tape (combine, then logsumexp, in one kernel)."""
    ids = []
    for f in sources:
        ids.extend(i for i in f.ids if i not in ids)
    axis = ids.index(var)
    plates = frozenset().union(*(f.plates for f in sources))
    tensor = _core.logsumexp_of_sum([f.arranged(ids) for f in sources], axis)
    return Factor(tensor, ids[:axis] + ids[axis + 1:], plates, sources[0].nesting)


def _joint_size(factors):
    sizes = {}
    for f in factors:
        sizes.update(f.sizes)
    return math.prod(sizes.values())


def _components(factors, local_vars):
    """Partition factors into groups connected through shared local vars."""
    groups = []
    for f in factors:
        linked = [g for g in groups if any(v in local_vars and v in f.ids
                                           for h in g for v in h.ids)]
        merged = [f]
        for g in linked:
            merged.extend(g)
            groups.remove(g)
        groups.append(merged)
    return groups


def eliminate(factors, sum_vars, var_plates, trail=None, maximize=False):
    """Sum the variables `sum_vars` (each living in the plates
    `var_plates[id]`) out of the factors' product.  Returns the resulting
    factors, each at the plate level where no summed variable needs it any
    more; the log of the total is the sum of all their entries.

    With a list `trail`, each variable is appended with the joint factor it
    was summed from, in elimination order: walked backwards, each joint
    depends only on variables summed after it, which is what sampling (or
    maximizing) the variables given the evidence needs (infer_discrete).
    `maximize` takes the max instead of the sum (max-product, for the most
    likely assignment)."""
    sum_vars = set(sum_vars)
    tree = {}
    for f in factors:
        tree.setdefault(f.plates, []).append(f)
    done = []
    while tree:
        leaf = max(tree, key=lambda plates: (len(plates), sorted(p.name for p in plates)))
        terms = tree.pop(leaf)
        local = {v for f in terms for v in f.ids if v in sum_vars and var_plates[v] == leaf}
        for group in _components(terms, local):
            group_vars = {v for f in group for v in f.ids if v in local}
            result = combine(_sum_out_all(group, group_vars, trail, maximize))
            pending = [v for v in result.ids if v in sum_vars]
            if not pending:
                done.append(result)
                continue
            parent = frozenset().union(*(var_plates[v] for v in pending))
            if not parent < leaf:
                raise ValueError(
                    "enumeration: the enumerated variables of plates "
                    f"{sorted(p.name for p in leaf)} are coupled by a factor in plates they "
                    "do not all share; this plated model has no tractable elimination "
                    "order (enumerate fewer sites, or move them into a common plate)")
            tree.setdefault(parent, []).append(result.plate_product(leaf - parent))
    return done
