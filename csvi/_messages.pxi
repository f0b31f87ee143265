# The effect-handler message and the loop that runs it through the handler
# stack, compiled: every sample and param statement under a handler makes one
# message and passes it through two or three handlers, so this is the eager
# step's most-run Python.  csvi.handlers.runtime is the public face.
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM


cdef class Message:
    """Everything a handler may know or change about one primitive call; the
    one place its fields are defined (dict-style access `msg["value"]` works,
    as in Pyro).

    type          "sample", "param", "subsample" (a plate's indices), "return"
                  (a traced function's return value, site "_RETURN"), or the
                  `type` of an `effectful` function
    name          site name, unique within one run of a model or guide
    fn            the distribution (sample), or the callable producing the value
    args, kwargs  extra arguments to fn
    value         the site's value; set up front for observed sites
    is_observed   obs was given (or a handler conditioned the site)
    scale         multiplier of log_prob (a subsampled plate's size/subsample_size,
                  handlers.scale)
    mask          None or a boolean array/Tensor; False entries drop out of log_prob
    cond_indep_stack  the plates (CondIndepStackFrame) around the site, innermost first
    infer         dict of inference hints (Pyro's `infer=`).  Keys csvi reads:
                  "_deterministic" (set by csvi.deterministic: the site records
                  a computed value and adds nothing to the density)
    done          a value has been produced; later handlers must not produce another
    stop          handlers further out do not see the message
    log_prob      the scaled and masked log-density, filled by Trace.compute_log_prob
    unscaled_log_prob  the same before scale and mask (what the distribution returned)
    """

    cdef public object type, name, fn, args, kwargs, value, scale, mask
    cdef public object cond_indep_stack, infer, log_prob, unscaled_log_prob
    cdef public bint is_observed, done, stop

    def __init__(self, type, name, fn, args=(), kwargs=None, value=None, is_observed=False,
                 infer=None):
        _fill(self, type, name, fn, args, kwargs, value, is_observed, infer)

    def __getitem__(self, key):
        if key not in _MESSAGE_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key, value):
        if key not in _MESSAGE_FIELDS:
            raise KeyError(f"a message has no field {key!r}; its fields are "
                           f"{', '.join(sorted(_MESSAGE_FIELDS))}")
        setattr(self, key, value)

    def __contains__(self, key):
        return key in _MESSAGE_FIELDS

    def get(self, key, default=None):
        return getattr(self, key) if key in _MESSAGE_FIELDS else default

    def copy(self):
        """A shallow copy (the same value, fn and dicts), as Pyro's msg.copy()."""
        cdef Message m = Message.__new__(Message)
        m.type, m.name, m.fn, m.args, m.kwargs = self.type, self.name, self.fn, self.args, self.kwargs
        m.value, m.is_observed, m.scale, m.mask = self.value, self.is_observed, self.scale, self.mask
        m.cond_indep_stack, m.infer, m.done, m.stop = (self.cond_indep_stack, self.infer,
                                                       self.done, self.stop)
        m.log_prob, m.unscaled_log_prob = self.log_prob, self.unscaled_log_prob
        return m

    def __repr__(self):
        return f"Message(type={self.type!r}, name={self.name!r}, is_observed={self.is_observed})"


cdef frozenset _MESSAGE_FIELDS = frozenset((
    "type", "name", "fn", "args", "kwargs", "value", "is_observed", "scale", "mask",
    "cond_indep_stack", "infer", "done", "stop", "log_prob", "unscaled_log_prob"))


cdef _default_process(Message msg):
    """What happens when no handler produced a value: draw or compute it."""
    if msg.type == "sample":
        fn = msg.fn
        msg.value = fn.rsample(*msg.args) if fn.has_rsample else fn.sample(*msg.args)
    else:
        msg.value = msg.fn(*msg.args, **msg.kwargs)


cpdef Message apply_stack(Message msg, list stack):
    """Run msg through `stack`'s handlers innermost-first, produce its value,
    then let the same handlers post-process it, outermost first (Pyro's
    order).  Hooks a handler does not define are None and skipped."""
    cdef Py_ssize_t n = PyList_GET_SIZE(stack)
    cdef Py_ssize_t start = n, k
    cdef object hook
    while start:
        start -= 1
        if start >= PyList_GET_SIZE(stack):  # a hook changed the stack
            continue
        hook = (<object>PyList_GET_ITEM(stack, start)).process_message
        if hook is not None:
            hook(msg)
            if msg.stop:
                break
    if msg.value is None and not msg.done:
        _default_process(msg)
    msg.done = True
    for k in range(start, n):
        if k >= PyList_GET_SIZE(stack):
            break
        hook = (<object>PyList_GET_ITEM(stack, k)).postprocess_message
        if hook is not None:
            hook(msg)
    return msg


cdef inline Message _fill(Message msg, type, name, fn, args, kwargs, value, bint is_observed,
                          infer):
    """Set a new message's fields (the others keep their defaults: None,
    False)."""
    msg.type = type
    msg.name = name
    msg.fn = fn
    msg.args = args
    msg.kwargs = kwargs if kwargs is not None else {}
    msg.value = value
    msg.is_observed = is_observed
    msg.scale = 1.0
    msg.cond_indep_stack = ()
    msg.infer = infer if infer is not None else {}
    return msg


def send(type, name, fn, tuple args, kwargs, value, bint is_observed, infer, list stack):
    """A new message through `stack`; returns its value (the primitives' path)."""
    return apply_stack(_fill(Message.__new__(Message), type, name, fn, args, kwargs, value,
                             is_observed, infer), stack).value


def sample(name, fn, *args, obs=None, infer=None, **kwargs):
    """A random variable `name` with distribution `fn`; `obs` makes it observed.

    Returns the value: `obs`, a replayed/conditioned value, or a fresh draw
    (reparameterized when fn supports it, so gradients flow through it)."""
    if isinstance(fn, type) or not hasattr(fn, "log_prob"):
        _bad_sample_fn(name, fn)
    cdef list stack = _thread_state().handlers
    if not stack:
        if obs is not None:
            return obs
        return fn.rsample(*args) if fn.has_rsample else fn.sample(*args)
    return apply_stack(_fill(Message.__new__(Message), "sample", name, fn, args, kwargs, obs,
                             obs is not None, infer), stack).value


# csvi.params' and csvi.transforms', imported on first use (they import _core)
cdef object _get_param_store = None, _ParamStore = None
cdef object _IdentityTransform = None, _SoftplusTransform = None


def param_value(name, init_value, constraint, event_dim=None):
    """The fn of a param message: the whole param from the store (plates
    subsample it afterwards, by `event_dim`).  (Compiled, with `param`:
    every param site of every step runs both.)"""
    global _get_param_store, _ParamStore, _IdentityTransform, _SoftplusTransform
    if _get_param_store is None:
        from csvi.params import ParamStore, get_param_store
        from csvi.transforms import IdentityTransform, SoftplusTransform
        _ParamStore, _IdentityTransform, _SoftplusTransform = (
            ParamStore, IdentityTransform, SoftplusTransform)
        _get_param_store = get_param_store
    store = _get_param_store()
    if type(store) is _ParamStore:  # ParamStore.get_param's every-step case in line
        e = (<dict?>store._entries).get(name)
        if e is not None:
            return _constrained(e)
    return store.get_param(name, init_value, constraint)


cdef _constrained(e):
    """as_param_value(e.transform(e.leaf), e.leaf) of a param store entry,
    the transform's call in line for the identity and softplus (an
    autoguide's locs and scales): IdentityTransform._call and
    SoftplusTransform._call."""
    leaf = e.leaf
    t = e.transform
    if type(t) is _IdentityTransform:
        value = as_tensor(leaf)
    elif type(t) is _SoftplusTransform:
        value = softplus(leaf)
    else:
        return as_param_value(t(leaf), leaf)
    (<Tensor>value)._param_leaf = leaf
    return value


def param(name, init_value, constraint, event_dim):
    """csvi.param's body (csvi.primitives gives it its defaults and
    docstring): straight from the store with no handler active, else a
    "param" message through the stack."""
    cdef list stack = _thread_state().handlers
    if not stack:
        return param_value(name, init_value, constraint)
    return apply_stack(_fill(Message.__new__(Message), "param", name, param_value,
                             (name, init_value, constraint),
                             None if event_dim is None else {"event_dim": int(event_dim)},
                             None, False, None), stack).value


def messenger_init(self, fn=None):
    """Messenger.__init__: the function the handler wraps (None: used as a
    context manager, or as `handler(fn)` later)."""
    self.fn = fn


def messenger_enter(self):
    """Messenger.__enter__: push the handler on this thread's stack."""
    _thread_state().handlers.append(self)
    return self


def messenger_exit(self, exc_type, exc, tb):
    """Messenger.__exit__: pop the handler; after an exception that skipped
    the exits of handlers entered after it, remove those too."""
    cdef list stack = _thread_state().handlers
    if stack and stack[-1] is self:
        stack.pop()
    elif self in stack:
        del stack[stack.index(self):]
    return False


def messenger_call(self, *args, **kwargs):
    """Messenger.__call__: run the wrapped function inside the handler (or,
    with no function yet, take the first argument as it: `handler(fn)`).
    Even a Ctrl-C between the push in __enter__ and its return (when
    __exit__ does not run) leaves the stack as it was."""
    if self.fn is None:
        if not args:
            raise IndexError("tuple index out of range")
        self.fn = args[0]
        return self
    cdef list stack = _thread_state().handlers
    cdef Py_ssize_t depth = len(stack)
    try:
        with self:
            return self._run(*args, **kwargs)
    finally:
        del stack[depth:]


def trace_postprocess_message(self, Message msg):
    """TraceMessenger.postprocess_message (compiled: every message of every
    traced run passes it): record msg under its name; a repeated name goes
    to Trace.add_node, which decides."""
    if self.param_only and msg.type != "param":
        return
    trace = self.trace
    nodes = trace.nodes
    if msg.name in nodes:
        trace.add_node(msg)
    else:
        nodes[msg.name] = msg


cdef object _trace_type = None  # csvi.handlers.trace_struct.Trace, imported on first use


cdef object _new_trace():
    global _trace_type
    if _trace_type is None:
        from csvi.handlers.trace_struct import Trace
        _trace_type = Trace
    return _trace_type()


def trace_init(self, fn=None, param_only=False):
    """TraceMessenger.__init__ (compiled, as the rest of its per-run
    methods: an eager step traces guide and model)."""
    self.fn = fn
    self.param_only = bool(param_only)
    self.trace = _new_trace()


def trace_enter(self):
    """TraceMessenger.__enter__: a fresh Trace, then Messenger's push."""
    self.trace = _new_trace()
    _thread_state().handlers.append(self)
    return self


def trace_run(self, *args, **kwargs):
    """TraceMessenger._run: the wrapped call, its value recorded as the
    site "_RETURN"."""
    value = self.fn(*args, **kwargs)
    self.trace.nodes["_RETURN"] = Message("return", "_RETURN", None, value=value)
    return value


def trace_get_trace(self, *args, **kwargs):
    """TraceMessenger.get_trace: run the wrapped function, return its Trace."""
    self(*args, **kwargs)
    return self.trace


cdef object _check_replayed = None  # csvi.distributions.validation's, imported on first use


cdef bint _replayed_fits(fn, value) except -1:
    """check_replayed's passing case, in line: a Tensor of the model's shape,
    in the support when validating."""
    if type(value) is not Tensor or (<Tensor>value)._value.shape != \
            fn.batch_shape + fn.event_shape:
        return False
    support = fn.support if fn._validate else None
    return support is None or support.first_violation(value) < 0


def replay_process_message(self, Message msg):
    """ReplayMessenger.process_message (compiled: every latent site of the
    model passes it in every eager step): a sample or subsample site of
    the replayed trace takes its value; the reused draw must fit the
    model's distribution there (`check_replayed`)."""
    global _check_replayed
    if msg.type != "sample" and msg.type != "subsample":
        return
    obj = self.trace.nodes.get(msg.name)
    if obj is None or msg.is_observed:
        return
    cdef Message old = <Message?>obj
    if old.type != msg.type:
        raise ValueError(f"replay: site '{msg.name}' is a {old.type} site in the replayed "
                         f"trace but a {msg.type} site here")
    if old.is_observed:
        raise ValueError(f"replay: site '{msg.name}' is observed in the replayed trace, "
                         "so there is no draw to reuse")
    if msg.type == "sample":
        if _check_replayed is None:
            from csvi.distributions.validation import check_replayed
            _check_replayed = check_replayed
        if not _replayed_fits(msg.fn, old.value):  # else check_replayed raises
            _check_replayed(msg.name, msg.fn, old.value,
                            enumerated="_enumerate_dim" in old.infer)
    msg.value = old.value
    msg.infer = dict(old.infer)  # handlers of this run may add fields
    msg.done = True


cdef _bad_sample_fn(name, fn):
    if isinstance(fn, type):
        raise TypeError(f"sample site '{name}': got the class {fn.__name__}, not a "
                        f"distribution; write {fn.__name__}(...) with its parameters")
    raise TypeError(f"sample site '{name}': expected a distribution (with sample and "
                    f"log_prob), got {type(fn).__name__} {fn!r}")


def compute_log_probs(nodes, site_filter, scale_and_mask):
    """Trace.compute_log_prob's loop: fill `log_prob` (scaled and masked by
    `scale_and_mask`) and `unscaled_log_prob` of every sample site in the
    dict `nodes` that has none yet and passes `site_filter` (None: all);
    errors name the site."""
    cdef Message site
    for name, obj in nodes.items():
        site = <Message?>obj
        if site.type != "sample" or site.log_prob is not None:
            continue
        if site_filter is not None and not site_filter(name, site):
            continue
        try:
            if site.args or site.kwargs:
                lp = site.fn.log_prob(site.value, *site.args, **site.kwargs)
            else:
                lp = site.fn.log_prob(site.value)
        except (ValueError, TypeError) as e:
            raise type(e)(f"site '{name}': {e}") from e
        site.unscaled_log_prob = lp
        if site.mask is None and type(site.scale) is float and site.scale == 1.0:
            site.log_prob = lp
        else:
            site.log_prob = scale_and_mask(lp, site.scale, site.mask, name)


def check_site_agreement(model_trace, guide_trace):
    """Every latent site of the model must be drawn by the guide and vice versa
    -- except sites the model enumerates, and the guide's auxiliary sites
    (`infer={"is_auxiliary": True}`, as an autoguide's unconstrained draws),
    which only the guide has.  (Compiled: it runs on both traces of every
    eager step; csvi.infer.elbo exports it.)"""
    cdef Message site, other
    guide_nodes, model_nodes = guide_trace.nodes, model_trace.nodes
    for name, obj in model_nodes.items():
        site = <Message?>obj
        if site.type != "sample" or site.is_observed:
            continue
        found = guide_nodes.get(name)
        if found is None and "_enumerate_dim" in site.infer:
            continue  # summed out in the model (TraceEnum_ELBO)
        if found is None:
            raise ValueError(f"site '{name}' is a latent sample site of the model but the "
                             "guide has no site of that name; add it to the guide (or "
                             "observe it in the model)")
        other = <Message?>found
        if other.type == "sample" and other.infer.get("is_auxiliary"):
            raise ValueError(f"site '{name}' is a latent sample site of the model but an "
                             "auxiliary site of the guide; the guide must draw it as an "
                             "ordinary site")
    for name, obj in guide_nodes.items():
        site = <Message?>obj
        if site.type != "sample" or site.is_observed or site.infer.get("is_auxiliary"):
            continue
        found = model_nodes.get(name)
        if found is None or (<Message?>found).type != "sample":
            raise ValueError(f"site '{name}' is sampled in the guide but the model has no "
                             "sample site of that name; remove it from the guide or add it "
                             "to the model")
        if (<Message>found).is_observed:
            raise ValueError(f"site '{name}' is sampled in the guide but observed in the "
                             "model")


def elbo_sites(model_nodes, guide_nodes):
    """Trace_ELBO._particle's walk over both traces' `nodes`: (the log_probs
    of the model's sample sites, those of the guide's reparameterized latent
    sites, the guide's other latent sites), each in trace order.  (Compiled:
    every eager step walks both traces.)"""
    cdef list model_lps = [], pathwise = [], score_sites = []
    cdef Message site
    for obj in model_nodes.values():
        site = <Message?>obj
        if site.type == "sample":
            model_lps.append(site.log_prob)
    for obj in guide_nodes.values():
        site = <Message?>obj
        if site.type == "sample" and not site.is_observed:
            if site.fn.has_rsample:
                pathwise.append(site.log_prob)
            else:
                score_sites.append(site)
    return model_lps, pathwise, score_sites


def enumerated_site_names(nodes):
    """Names of the sample sites in a trace's `nodes` configured for
    enumeration (`infer={"enumerate": ...}`), in order (compiled: the eager
    step asks it of every guide trace)."""
    cdef Message site
    cdef list names = []
    for name, obj in nodes.items():
        site = <Message?>obj
        if site.type == "sample" and site.infer.get("enumerate"):
            names.append(name)
    return names


def param_names(traces):
    """Names of the param sites the traced runs touched, in order (blocked
    params never reach a trace, so they are not trained, as in Pyro).
    `traces`: (model_trace, guide_trace) pairs; the guide's params come
    first.  (Compiled: every eager step asks it.)"""
    cdef dict names = {}
    cdef Message site
    for model_trace, guide_trace in traces:
        for tr in (guide_trace, model_trace):
            for name, obj in tr.nodes.items():
                site = <Message?>obj
                if site.type == "param":
                    names[name] = None
    return list(names)


def step_updates(Tape tape, store, traces):
    """SVI.step's update list: (name, unconstrained array, gradient) of every
    param the traced runs touched that got a gradient, in `param_names`'
    order, each gradient a view of the tape's arena.  A gradient that is not
    finite raises, naming its param, before anything is updated.
    (Compiled: every eager step builds it.)"""
    cdef dict entries = store._entries
    cdef list updates = []
    cdef Tensor leaf
    cdef csvi_slot *s
    for name in param_names(traces):
        e = entries[name]
        leaf = <Tensor?>e.leaf
        if not tape.owns(leaf):
            continue
        s = &tape.c.slots[leaf._slot]
        if s.grad == NULL:
            continue
        if csvi_first_outside(s.grad, s.size, -INFINITY, INFINITY, 1, 1, 0) >= 0:
            raise ValueError(f"the gradient of param '{name}' is not finite; the params "
                             "and optimizer state were left unchanged")
        updates.append((name, e.unconstrained, tape.grad_view(leaf._slot)))
    return updates
