# NumPy ufuncs and array functions that map to csvi ops (used by Tensor's
# __array_ufunc__ and __array_function__); anything else is a TypeError.
# The NumPy functions take NumPy's signatures; an argument csvi does not
# implement is a TypeError naming it, never ignored.  Also DataArray, the
# form NumPy data takes inside a model run by SVI.

_UFUNCS = {
    "add": lambda a, b: binary(OP_ADD, a, b),
    "subtract": lambda a, b: binary(OP_SUB, a, b),
    "multiply": lambda a, b: binary(OP_MUL, a, b),
    "divide": lambda a, b: binary(OP_DIV, a, b),
    "true_divide": lambda a, b: binary(OP_DIV, a, b),
    "power": power,
    "square": lambda a: power(a, 2.0),
    "negative": lambda a: unary(OP_NEG, a),
    "positive": lambda a: as_tensor(a),
    "exp": exp,
    "log": log,
    "log1p": log1p,
    "expm1": expm1,
    "sqrt": sqrt,
    "absolute": abs_,
    "tanh": tanh,
    "matmul": matmul,
    "greater": lambda a, b: compare(OP_GT, a, b),
    "greater_equal": lambda a, b: compare(OP_GE, a, b),
    "less": lambda a, b: compare(OP_LT, a, b),
    "less_equal": lambda a, b: compare(OP_LE, a, b),
    "equal": equal,
    "not_equal": not_equal,
    # scipy.special's ufuncs
    "gammaln": lgamma,
    "psi": digamma,
    "expit": sigmoid,
    "log_expit": log_sigmoid,
    "logit": logit,
    "erf": erf,
    "erfc": erfc,
    "ndtr": ndtr,
    "log_ndtr": log_ndtr,
    "i0e": i0e,
    "i1e": i1e,
    "xlogy": xlogy,
    "xlog1py": xlog1py,
    "betaln": betaln,
    # the families' cdf/icdf ops (csvi/_families.pxi)
    "arctan": arctan,
    "tan": tan,
    "ndtri": ndtri,
}


cdef _reject(str name, dict given):
    """TypeError for NumPy arguments given that csvi does not implement."""
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise TypeError(f"csvi: numpy.{name} on a tensor does not support the argument(s) "
                        f"{', '.join(bad)}")


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _reject("sum", {"dtype": dtype, "out": out, "initial": initial, "where": where})
    return sum(a, axis, keepdims)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _reject("mean", {"dtype": dtype, "out": out, "where": where})
    return mean(a, axis, keepdims)


def _ddof(str name, ddof, correction):
    if correction is not None:
        if ddof:
            raise TypeError(f"csvi: numpy.{name}: pass ddof or correction, not both")
        return correction
    return ddof


def _np_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
            mean=None, correction=None):
    _reject("var", {"dtype": dtype, "out": out, "where": where, "mean": mean})
    return var(a, axis, _ddof("var", ddof, correction), keepdims)


def _np_std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
            mean=None, correction=None):
    _reject("std", {"dtype": dtype, "out": out, "where": where, "mean": mean})
    return std(a, axis, _ddof("std", ddof, correction), keepdims)


def _np_max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    _reject("max", {"out": out, "initial": initial, "where": where})
    return amax(a, axis, keepdims)


def _np_min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    _reject("min", {"out": out, "initial": initial, "where": where})
    return amin(a, axis, keepdims)


def _np_cumsum(a, axis=None, dtype=None, out=None):
    _reject("cumsum", {"dtype": dtype, "out": out})
    return cumsum(a, axis)


def _np_cumprod(a, axis=None, dtype=None, out=None):
    _reject("cumprod", {"dtype": dtype, "out": out})
    return cumprod(a, axis)


def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    _reject("reshape", {"order": None if order == "C" else order, "copy": copy})
    return reshape(a, shape if shape is not None else newshape)


def _np_concatenate(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _reject("concatenate", {"out": out, "dtype": dtype, "casting": casting})
    return concatenate(arrays, axis)


def _np_stack(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _reject("stack", {"out": out, "dtype": dtype, "casting": casting})
    return stack(arrays, axis)


def _np_where(condition, *xy):
    if len(xy) != 2:
        raise TypeError("csvi: numpy.where(condition) (the indices where it holds) has a "
                        "data-dependent shape and is not supported on tensors; use "
                        "np.where(condition, x, y), or call it on t.numpy()")
    return where(condition, xy[0], xy[1])


def _np_clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, **kwargs):
    _reject("clip", dict(kwargs, out=out))
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if isinstance(lo, Tensor) or isinstance(hi, Tensor) or np.ndim(lo) or np.ndim(hi):
        # bounds per element: the gradient reaches a bound where it is taken
        y = a if lo is None else where(compare(OP_LT, a, lo), lo, a)
        return y if hi is None else where(compare(OP_GT, y, hi), hi, y)
    return clip(a, lo, hi)


def _np_einsum(subscripts, *operands, out=None, dtype=None, order=None, casting=None,
               optimize=None):
    _reject("einsum", {"out": out, "dtype": dtype, "order": order, "casting": casting,
                       "optimize": optimize})
    return einsum(subscripts, *operands)


def _np_pad(array, pad_width, mode="constant", **kwargs):
    constant_values = kwargs.pop("constant_values", 0)
    _reject("pad", kwargs)
    return pad(array, pad_width, mode, constant_values)


def _np_dot(a, b, out=None):
    _reject("dot", {"out": out})
    return dot(a, b)


def _np_broadcast_to(array, shape, subok=None):
    _reject("broadcast_to", {"subok": subok})
    return broadcast_to(array, shape)


def _np_diagonal(a, offset=0, axis1=0, axis2=1):
    return diagonal(a, offset, axis1, axis2)


def _np_cholesky(a, /, *, upper=False):
    L = cholesky(a)
    return _permuted(L, list(range(L.ndim - 2)) + [L.ndim - 1, L.ndim - 2]) if upper else L


def _np_size(a, axis=None):
    return value_of(a).size if axis is None else value_of(a).shape[axis]


_ARRAY_FUNCTIONS = {
    np.sum: _np_sum,
    np.mean: _np_mean,
    np.var: _np_var,
    np.std: _np_std,
    np.max: _np_max,
    np.amax: _np_max,
    np.min: _np_min,
    np.amin: _np_min,
    np.cumsum: _np_cumsum,
    np.cumprod: _np_cumprod,
    np.stack: _np_stack,
    np.concatenate: _np_concatenate,
    np.where: _np_where,
    np.clip: _np_clip,
    np.transpose: transpose,
    np.reshape: _np_reshape,
    np.squeeze: squeeze,
    np.expand_dims: expand_dims,
    np.broadcast_to: _np_broadcast_to,
    np.einsum: _np_einsum,
    np.dot: _np_dot,
    np.diag: diag,
    np.tril: tril,
    np.triu: triu,
    np.diagonal: _np_diagonal,
    np.linalg.cholesky: _np_cholesky,
    np.pad: _np_pad,
    np.shape: lambda a: value_of(a).shape,
    np.ndim: lambda a: value_of(a).ndim,
    np.size: _np_size,
}


# ---- NumPy data given to a model -----------------------------------------------

class DataArray(np.ndarray):
    """A float or integer NumPy array passed to model and guide by `SVI.step`
    and `SVI.compile`: a view of the caller's array (no copy) that is NumPy in
    every respect -- dtype, methods, numpy functions, Python decisions on its
    values -- except that indexing it with a csvi Tensor (a plate's indices, a
    discrete draw) records a gather on the tape, so `X[idx]` is replayed with
    fresh indices by a compiled loop.  Indexing integer data gives an integer
    Tensor.  Values derived from it by NumPy stay DataArrays (scalars stay
    scalars).  C-contiguous float64 data is gathered from in place; other
    data is converted to float64 each time it is indexed so (a compiled
    program refreshes its copy from the data before each run; in an eager
    loop, pass csvi.as_tensor(data) to convert it once)."""

    def __getitem__(self, key):
        if type(key) is int:  # the common `data[i]` of a loop over data, kept fast
            return np.ndarray.__getitem__(self, key)
        if isinstance(key, Tensor) or (type(key) is tuple and _has_tensor(key)) or (
                _has_index_array(key) and _compiling()):
            # (while a step is compiled, an index array -- an unsubsampled
            # plate's arange -- gathers on the tape too, so the program
            # reads each run's data rather than a copy taken when traced)
            out = index(self, key)
            if self.dtype.kind in "iu":
                (<Tensor>out)._integer = True
            return out
        return np.ndarray.__getitem__(self, key)

    def long(self):
        """torch's `.long()`, which Pyro models call on observed values: the
        values as int64 (rounded toward zero), still a DataArray."""
        return self.astype(np.int64, copy=False)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        if return_scalar:
            return arr[()]
        return np.ndarray.__array_wrap__(self, arr, context, return_scalar)

    # more torch Tensor methods that tutorial models call on their data
    def unsqueeze(self, dim):
        return np.expand_dims(self, dim)

    def float(self):
        """float64 values: the array itself when it is float64 already; while
        a step is compiled, integer data becomes a Tensor whose conversion
        the program refreshes each run (a NumPy copy would be frozen)."""
        if self.dtype != np.float64 and _compiling():
            return as_tensor(self)
        return self.astype(np.float64, copy=False)

    def __repr__(self):
        return repr(self.view(np.ndarray))


cdef bint _has_index_array(object key):
    """Whether an index key holds an integer or boolean array (NumPy's
    advanced indexing, which copies)."""
    if isinstance(key, np.ndarray):
        return (<cnp.ndarray>key).dtype.kind in "iub"
    if type(key) is tuple:
        for k in key:
            if isinstance(k, np.ndarray) and (<cnp.ndarray>k).dtype.kind in "iub":
                return True
    return False


cdef bint _computed_from_data(object x):
    """Whether the DataArray x holds values NumPy computed from an argument,
    rather than the argument's memory: the views of an argument lead back to
    the DataArray that as_data made of it (NumPy stops collapsing a view's
    bases at a base of another type), a computed array does not."""
    while isinstance(x, DataArray):
        if getattr(x, "_argument", False):
            return False
        x = x.base
    return True


class NewDataEachStep:
    """Context for compiling a Jit* ELBO's step, whose later steps bring new
    arrays: an array NumPy computes from them in the model would keep the
    traced step's values, so it is refused (an error saying what to do)."""

    def __enter__(self):
        _thread_state().new_data_each_step = True
        return self

    def __exit__(self, *exc):
        _thread_state().new_data_each_step = False


cdef bint _refusing_computed_data():
    return _thread_state().new_data_each_step and _compiling()


cdef bint _compiling():
    """Whether the innermost recording tape is a step being compiled."""
    cdef _ThreadState st = _thread_state()
    return bool(st.tapes) and (<Tape>st.tapes[-1]).freezing


cpdef object as_data(object x):
    """x as a DataArray view when it is a float or integer ndarray, else x."""
    if type(x) is np.ndarray and x.dtype.kind in "fiu":
        view = x.view(DataArray)
        view._argument = True
        return view
    return x


def data_args(tuple args, dict kwargs):
    """SVI's arguments with float and integer ndarrays as DataArrays."""
    return tuple([as_data(a) for a in args]), {k: as_data(v) for k, v in kwargs.items()}
