"""The optimizers, by Pyro's names: each is an argument table (torch.optim's
defaults, or Pyro's for ClippedAdam) over one C update in src_c/optim.c.

    optim = csvi.optim.Adam({"lr": 0.005, "betas": (0.90, 0.999)})
    optim = csvi.optim.Adam(lambda name: {"lr": 0.01 if name == "scale" else 0.001})
"""
from csvi.optim.optim import PyroOptim, betas, finite, flag, nonnegative, positive

__all__ = ["Adam", "ClippedAdam", "SGD", "RMSprop", "Adagrad"]


def _split_betas(args):
    hyper = dict(args)
    hyper["beta1"], hyper["beta2"] = hyper.pop("betas")
    return hyper


class Adam(PyroOptim):
    """torch.optim.Adam: bias-corrected moment estimates; optional AMSGrad."""

    kind = "Adam"
    args = {
        "lr": (1e-3, nonnegative),
        "betas": ((0.9, 0.999), betas),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "amsgrad": (False, flag),
        "maximize": (False, flag),
    }

    def to_kernel(self, args):
        return _split_betas(args)


class ClippedAdam(PyroOptim):
    """Pyro's ClippedAdam: each gradient element clamped to [-clip_norm,
    clip_norm], Adam with eps added before bias correction, and the learning
    rate multiplied by `lrd` at every step (before the update, as Pyro does)."""

    kind = "ClippedAdam"
    args = {
        "lr": (1e-3, nonnegative),
        "betas": ((0.9, 0.999), betas),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "clip_norm": (10.0, positive),
        "lrd": (1.0, positive),
    }

    def to_kernel(self, args):
        return _split_betas(args)


class SGD(PyroOptim):
    """torch.optim.SGD: optional momentum (with dampening) or Nesterov momentum."""

    kind = "SGD"
    args = {
        "lr": (1e-3, nonnegative),
        "momentum": (0.0, nonnegative),
        "dampening": (0.0, finite),
        "weight_decay": (0.0, nonnegative),
        "nesterov": (False, flag),
        "maximize": (False, flag),
    }

    def validate(self, args, where):
        if args["nesterov"] and (args["momentum"] <= 0 or args["dampening"] != 0):
            raise ValueError(f"{where}: nesterov=True requires momentum > 0 and dampening=0, "
                             f"got momentum={args['momentum']}, dampening={args['dampening']}")


class RMSprop(PyroOptim):
    """torch.optim.RMSprop: optional momentum and centered variance."""

    kind = "RMSprop"
    args = {
        "lr": (1e-2, nonnegative),
        "alpha": (0.99, nonnegative),
        "eps": (1e-8, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "momentum": (0.0, nonnegative),
        "centered": (False, flag),
        "maximize": (False, flag),
    }


class Adagrad(PyroOptim):
    """torch.optim.Adagrad: accumulated squared gradients, optional lr decay."""

    kind = "Adagrad"
    args = {
        "lr": (1e-2, nonnegative),
        "lr_decay": (0.0, nonnegative),
        "weight_decay": (0.0, nonnegative),
        "initial_accumulator_value": (0.0, nonnegative),
        "eps": (1e-10, nonnegative),
        "maximize": (False, flag),
    }
