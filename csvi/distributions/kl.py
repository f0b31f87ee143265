"""KL divergence KL(p || q) between two distributions, through a registry keyed
by the pair of types, as torch.distributions (and so Pyro) does it.

A rule is registered with `@register_kl(P, Q)` next to the families it
concerns (kl_rules.py holds those among the original families and the
wrappers); `kl_divergence(p, q)` picks the most specific registered pair (by
the two types' method resolution orders), so a rule for a base class serves
its subclasses unless they have their own.  An unregistered pair is a
NotImplementedError naming both types: TraceMeanField_ELBO relies on that to
fall back to a Monte Carlo estimate.  Rules compose tape ops, so a KL has a
gradient and replays in a compiled program like any other computation.
"""

__all__ = ["kl_divergence", "register_kl"]

_KL_RULES = {}
_DISPATCH = {}


def register_kl(type_p, type_q):
    """Decorator registering `fn(p, q)` as KL(p || q) for p of type_p and q of
    type_q (subclasses included)."""
    if not (isinstance(type_p, type) and isinstance(type_q, type)):
        raise TypeError(f"register_kl expects two classes, got {type_p!r} and {type_q!r}")

    def decorator(fn):
        _KL_RULES[type_p, type_q] = fn
        _DISPATCH.clear()
        return fn

    return decorator


def _rank(cls, base):
    """Distance from cls up to base in cls's method resolution order."""
    return cls.__mro__.index(base)


def _lookup(type_p, type_q):
    matches = [(_rank(type_p, p) + _rank(type_q, q), _rank(type_p, p), (p, q))
               for p, q in _KL_RULES if issubclass(type_p, p) and issubclass(type_q, q)]
    if not matches:
        return None
    return _KL_RULES[min(matches)[2]]


def kl_divergence(p, q):
    """KL(p || q), of shape batch_shape (the event dims summed out)."""
    key = (type(p), type(q))
    fn = _DISPATCH.get(key)
    if fn is None:
        fn = _lookup(*key)
        if fn is None:
            raise NotImplementedError(
                f"kl_divergence: no rule registered for {type(p).__name__} and "
                f"{type(q).__name__}; register one with "
                "@csvi.distributions.kl.register_kl")
        _DISPATCH[key] = fn
    return fn(p, q)
