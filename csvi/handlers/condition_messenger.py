"""condition: observe sites at given values (Pyro's `poutine.condition`)."""
from csvi.handlers.messenger import Messenger

__all__ = ["ConditionMessenger"]


class ConditionMessenger(Messenger):
    """Makes the named sample sites observed at the given values (a dict, or
    a Trace whose sample sites give them).

        >>> import csvi, csvi.distributions as dist
        >>> from csvi import handlers
        >>> def model():
        ...     return csvi.sample("z", dist.Normal(0.0, 1.0))
        >>> tr = handlers.trace(handlers.condition(model, data={"z": 0.5})).get_trace()
        >>> float(tr.nodes["z"]["value"]), tr.nodes["z"]["is_observed"]
        (0.5, True)
    """

    def __init__(self, fn=None, data=None):
        super().__init__(fn)
        if data is None:
            raise ValueError("condition: data (a dict of site name to value) is required")
        if hasattr(data, "nodes"):  # a Trace, as Pyro allows
            data = {name: site.value for name, site in data.nodes.items()
                    if site.type == "sample"}
        self.data = data

    def process_message(self, msg):
        if msg.type == "sample" and msg.name in self.data:
            msg.value = self.data[msg.name]
            msg.is_observed = True
            msg.done = True
