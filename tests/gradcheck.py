"""Finite-difference gradient checks shared by csvi's test files.

    from gradcheck import numerical_grad, assert_grads_match

`numerical_grad(f, x, eps)` is central differences of a scalar NumPy function
(steps relative to |x| with `relative=True`).
`assert_grads_match(fn, inputs)` runs `fn` on Tensors, back-propagates a random
projection of its output (so the whole vector-Jacobian product is checked, not
just the gradient of a sum) and compares every input's `.grad` with central
differences of the same projection.
"""
import numpy as np

import csvi


def numerical_grad(f, x, eps=1e-6, relative=False):
    """Central-difference gradient of the scalar function `f` at the array `x`.

    `f` gets a float64 array of x's shape (perturbed in place: copy it if you
    keep it) and returns a number.  The step is eps, or eps * max(1, |x_i|)
    with `relative` (for inputs of any magnitude).
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        step = eps * max(1.0, abs(old)) if relative else eps
        flat[i] = old + step
        f_plus = float(f(x))
        flat[i] = old - step
        f_minus = float(f(x))
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2.0 * step)
    return grad


def _value(out):
    return out.numpy() if isinstance(out, csvi.Tensor) else np.asarray(out, dtype=np.float64)


def assert_grads_match(fn, inputs, wrt=None, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0):
    """Checks csvi's gradients of `fn(*inputs)` against central differences.

    `inputs` are arrays or numbers; those at positions `wrt` (default: all)
    are passed to `fn` as Tensors with requires_grad, the others as they are.
    `fn` returns a Tensor of any shape.  Returns the list of csvi gradients
    (one per `wrt` position) of sum(fn(...) * weights), with random normal
    weights, or of fn(...) itself when it returns a 0-d Tensor.
    """
    inputs = [np.array(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x
              for x in inputs]
    wrt = list(range(len(inputs))) if wrt is None else list(wrt)
    leaves = {i: csvi.tensor(inputs[i], requires_grad=True) for i in wrt}
    out = fn(*[leaves.get(i, x) for i, x in enumerate(inputs)])
    assert isinstance(out, csvi.Tensor), f"fn returned {type(out).__name__}, not a Tensor"
    assert out.requires_grad, "fn's output does not require grad"
    weights = np.random.default_rng(seed).standard_normal(out.shape) if out.ndim else 1.0
    (out * weights).sum().backward()

    grads = []
    for i in wrt:
        analytic = leaves[i].grad
        assert analytic is not None, f"input {i} got no gradient"
        assert analytic.shape == inputs[i].shape, (
            f"input {i}: gradient shape {analytic.shape} != input shape {inputs[i].shape}")

        def projected(xi, i=i):
            args = [csvi.tensor(xi) if j == i else
                    (csvi.tensor(x) if j in leaves else x) for j, x in enumerate(inputs)]
            return np.sum(_value(fn(*args)) * weights)

        numeric = numerical_grad(projected, inputs[i], eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient w.r.t. input {i}")
        grads.append(analytic)
    return grads
