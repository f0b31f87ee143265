# NumPy ufuncs and array functions that map to csvi ops (used by Tensor's
# __array_ufunc__ and __array_function__); anything else is a TypeError.

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
}

_ARRAY_FUNCTIONS = {
    np.sum: sum,
    np.mean: mean,
    np.stack: stack,
    np.concatenate: concatenate,
    np.where: where,
    np.clip: lambda a, a_min=None, a_max=None, min=None, max=None: clip(
        a, a_min if a_min is not None else min, a_max if a_max is not None else max),
    np.transpose: transpose,
    np.reshape: lambda a, shape=None, newshape=None, **kw: reshape(
        a, shape if shape is not None else newshape),
}
