"""What a traced step touched: shared by eager SVI and the compiled program."""

__all__ = ["param_names"]


def param_names(traces):
    """Names of the param sites the traced runs touched, in order (blocked
    params never reach a trace, so they are not trained, as in Pyro)."""
    names = {}
    for model_trace, guide_trace in traces:
        for tr in (guide_trace, model_trace):
            for name, site in tr.nodes.items():
                if site.type == "param":
                    names[name] = None
    return list(names)
