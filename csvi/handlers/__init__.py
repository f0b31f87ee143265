"""Effect handlers (Pyro's `poutine`, NumPyro's `handlers`), in Pyro's module
layout: `csvi.handlers.runtime` (Message, apply_stack, effectful),
`csvi.handlers.messenger.Messenger`, one `*_messenger` module per handler.

Each handler is a Messenger: use it as a context manager
(`with handlers.scale(scale=2.):`) or wrap a function
(`handlers.trace(model).get_trace(*args)`).

    >>> from csvi import handlers, sample, distributions as dist
    >>> def model():
    ...     return sample("z", dist.Normal(0.0, 1.0))
    >>> tr = handlers.trace(handlers.condition(model, data={"z": 0.5})).get_trace()
    >>> float(tr.nodes["z"]["value"])
    0.5
"""
from csvi.handlers.block_messenger import BlockMessenger
from csvi.handlers.condition_messenger import ConditionMessenger
from csvi.handlers.enum_messenger import EnumMessenger
from csvi.handlers.escape_messenger import EscapeMessenger, NonlocalExit
from csvi.handlers.infer_config_messenger import InferConfigMessenger
from csvi.handlers.markov_messenger import MarkovMessenger, markov
from csvi.handlers.mask_messenger import MaskMessenger
from csvi.handlers.messenger import Messenger
from csvi.handlers.queue import queue
from csvi.handlers.replay_messenger import ReplayMessenger
from csvi.handlers.scale_messenger import ScaleMessenger
from csvi.handlers.seed_messenger import SeedMessenger
from csvi.handlers.substitute_messenger import SubstituteMessenger
from csvi.handlers.trace_messenger import TraceMessenger
from csvi.handlers.trace_struct import Trace

# The lower-case names users write, as in Pyro and NumPyro.
block = BlockMessenger
condition = ConditionMessenger
enum = EnumMessenger
escape = EscapeMessenger
infer_config = InferConfigMessenger
mask = MaskMessenger
replay = ReplayMessenger
scale = ScaleMessenger
seed = SeedMessenger
substitute = SubstituteMessenger
trace = TraceMessenger

__all__ = ["Messenger", "NonlocalExit", "Trace", "block", "condition", "enum", "escape",
           "infer_config", "markov", "mask", "queue", "replay", "scale", "seed", "substitute",
           "trace"]
