"""A user's own objective for SVI, as Pyro accepts one: `SVI(model, guide,
optim, loss=fn)` with `fn(model, guide, *args, **kwargs)` returning a
differentiable loss Tensor (e.g. `Trace_ELBO().differentiable_loss` plus a
penalty).  The adapter gives fn the ELBO interface SVI and the compiled loop
use, so a custom loss steps, compiles and checkpoints like an ELBO; the
params it trains are those its run touched (traced with param_only)."""
from csvi import _core
from csvi.handlers import trace
from csvi.handlers.trace_struct import Trace

__all__ = ["CustomLoss"]


class CustomLoss:
    """`fn` as an ELBO-like loss: one "particle", the loss is its own surrogate."""

    num_particles = 1
    particles_per_run = 1
    independent_particles = True

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"SVI: loss must be an ELBO or a callable "
                            f"fn(model, guide, *args, **kwargs), got {fn!r}")
        self.fn = fn

    def particle_tensors(self, model, guide, args, kwargs):
        capture = trace(param_only=True)
        with capture:
            loss = self.fn(model, guide, *args, **kwargs)
        if not isinstance(loss, _core.Tensor) or loss.shape != ():
            raise TypeError(f"SVI: the loss function {getattr(self.fn, '__name__', self.fn)!r} "
                            f"must return a scalar csvi Tensor, got {loss!r}")
        # (param trace, empty trace) stands where an ELBO gives (model, guide)
        return loss, loss, [(capture.trace, Trace())]

    def loss_tensors(self, model, guide, args, kwargs):
        return self.particle_tensors(model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs):
        return float(_core.value_of(self.fn(model, guide, *args, **kwargs)))
