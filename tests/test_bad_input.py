"""What an adversarial new user hands csvi, and the error they get back.

One table: each case is a call that must fail, the exception type, and a
pattern the message must match -- the argument, site or index at fault, what
was given, and (where there is a choice) what to do.  Out-of-range inputs that
now give a correct result instead of garbage are tested beside their
families (test_distributions.py, test_transforms.py)."""
import numpy as np
import pytest

import csvi
import csvi.distributions as dist
from csvi import constraints, handlers
from csvi import transforms as T
from csvi.infer import SVI, Trace_ELBO
from csvi.optim import Adam


def _log_prob_of_site(obs):
    """The model's log-density with `obs` at site 'x' (how an obs is first used)."""
    def model():
        csvi.sample("x", dist.Normal(0.0, 1.0), obs=obs)
    return handlers.trace(model).get_trace().log_prob_sum()


def _svi_step(model, guide):
    return SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO()).step()


def _guide_of_wrong_shape():
    """The guide draws z of shape (2,) where the model's z is a scalar; the
    model's next site would otherwise take the blame."""
    def model():
        z = csvi.sample("z", dist.Normal(0.0, 1.0))
        with csvi.plate("data", 3):
            csvi.sample("obs", dist.Normal(z, 1.0), obs=np.zeros(3))

    def guide():
        csvi.sample("z", dist.Normal(np.zeros(2), 1.0))
    return _svi_step(model, guide)


def _guide_of_wrong_shape_in_plate():
    def model():
        with csvi.plate("data", 3):
            z = csvi.sample("z", dist.Normal(0.0, 1.0))
            csvi.sample("obs", dist.Normal(z, 1.0), obs=np.zeros(3))

    def guide():
        csvi.sample("z", dist.Normal(np.zeros(2), 1.0))
    return _svi_step(model, guide)


def _guide_outside_support():
    """A Normal guide for a Gamma latent used as a scale: without the check the
    error is about some Normal's scale, at no site."""
    def model():
        s = csvi.sample("s", dist.Gamma(2.0, 1.0))
        with csvi.plate("data", 3):
            csvi.sample("obs", dist.Normal(0.0, s), obs=np.zeros(3))

    def guide():
        csvi.sample("s", dist.Normal(-3.0, 0.1))
    return _svi_step(model, guide)


_X = np.arange(6.0).reshape(3, 2)

CASES = [
    # ---- a distribution argument that is not real numbers ------------------------
    ("str loc", lambda: dist.Normal("a", 1.0), TypeError,
     r"Normal: loc must be a number, an array or a Tensor of real numbers, got str 'a'"),
    ("numeric str", lambda: dist.Normal("1.5", 1.0), TypeError, r"Normal: loc .* got str '1.5'"),
    ("complex scalar", lambda: dist.Normal(1j, 1.0), TypeError,
     r"Normal: loc must be real numbers, got an array of complex numbers: complex 1j"),
    ("complex array", lambda: dist.Normal(np.array([1 + 2j]), 1.0), TypeError,
     r"Normal: loc must be real numbers, got an array of complex"),
    ("ragged", lambda: dist.Normal([[1.0, 2.0], [3.0]], 1.0), ValueError,
     r"Normal: loc must be a rectangular array of numbers, got a ragged list"),
    ("None", lambda: dist.Normal(None, 1.0), TypeError, r"Normal: loc .* got NoneType None"),
    ("None inside", lambda: dist.Normal([1.0, None], 1.0), TypeError,
     r"Normal: loc must be real numbers, got an array of Python objects"),
    ("second arg", lambda: dist.Gamma(1.0, "x"), TypeError, r"Gamma: rate .* got str 'x'"),
    ("probs str", lambda: dist.Bernoulli(probs="0.5"), TypeError, r"Bernoulli: probs .* str"),
    ("ragged probs", lambda: dist.Categorical(probs=[[0.5, 0.5], [1.0]]), ValueError,
     r"Categorical: probs must be a rectangular array"),
    ("complex logits", lambda: dist.Categorical(logits=[1j, 0.0]), TypeError,
     r"Categorical: logits must be real numbers"),
    ("rate None", lambda: dist.Poisson(None), TypeError, r"Poisson: rate .* None"),
    ("Delta v", lambda: dist.Delta("a"), TypeError, r"Delta: v .* got str 'a'"),
    ("Uniform high", lambda: dist.Uniform(0.0, "1"), TypeError, r"Uniform: high .* str"),
    # ---- an argument of the right type but out of range ----------------------------
    ("Uniform width overflows", lambda: dist.Uniform(-1e308, 1e308), ValueError,
     r"Uniform: high must be greater than low, with high - low finite; got low=-1e\+308 and "
     r"high=1e\+308 \(high - low = inf\)"),
    ("Poisson inf", lambda: dist.Poisson(np.inf), ValueError,
     r"Poisson: rate must be a finite number >= 0, got inf"),
    # ---- an obs or log_prob value that is not real numbers -------------------------
    ("obs str", lambda: _log_prob_of_site("abc"), TypeError,
     r"site 'x': Normal.log_prob: value must be .* got str 'abc'"),
    ("obs ragged", lambda: _log_prob_of_site([[1.0], [1.0, 2.0]]), ValueError,
     r"site 'x': Normal.log_prob: value must be a rectangular array"),
    ("obs complex", lambda: _log_prob_of_site(np.array([1j])), TypeError,
     r"site 'x': Normal.log_prob: value must be real numbers, got an array of complex"),
    ("log_prob None", lambda: dist.Normal(0.0, 1.0).log_prob(None), TypeError,
     r"Normal.log_prob: value .* got NoneType None"),
    # ---- shapes and counts: no silent truncation or parsing ------------------------
    ("fractional sample_shape", lambda: dist.Normal(0.0, 1.0).sample((2.5,)), TypeError,
     r"Normal: sample_shape must be a tuple of integers >= 0, got tuple \(2.5,\)"),
    ("str sample_shape", lambda: dist.Normal(0.0, 1.0).sample("33"), TypeError,
     r"Normal: sample_shape .* got str '33'"),
    ("negative sample_shape", lambda: dist.Normal(0.0, 1.0).rsample((-1,)), TypeError,
     r"Normal: sample_shape .* got tuple \(-1,\)"),
    ("fractional expand", lambda: dist.Normal(0.0, 1.0).expand((2.5,)), TypeError,
     r"Normal.expand: batch_shape must be a tuple of integers"),
    ("fractional to_event", lambda: dist.Normal(np.zeros((2, 2)), 1.0).to_event(1.5),
     TypeError, r"Normal.to_event: reinterpreted_batch_ndims must be an integer, got float 1.5"),
    ("fractional event_dim", lambda: dist.Delta(np.zeros(2), event_dim=0.5), TypeError,
     r"Delta: event_dim must be an integer, got float 0.5"),
    ("mask of fractions", lambda: dist.Normal(np.zeros(3), 1.0).mask(np.array([0.5, 1.0, 0.0])),
     ValueError, r"Normal.mask: mask must hold booleans \(True/False or 1/0\), got 0.5 at "
                 r"index 0"),
    ("mask str", lambda: dist.Normal(np.zeros(3), 1.0).mask("abc"), TypeError,
     r"Normal.mask: mask .* got str 'abc'"),
    ("fractional tensor index", lambda: csvi.as_tensor(_X)[csvi.tensor([0.5, 1.0])], IndexError,
     r"index 0.5 for dim 0 \(size 3\) is not a whole number \(op TAKE: an index array of "
     r"shape \(2,\), flat position 0\)"),
    # ---- params -----------------------------------------------------------------------
    ("param str", lambda: csvi.param("s", "abc"), TypeError,
     r"param 's': init_value must be a number, an array or a Tensor of real numbers, got str"),
    ("param constraint str", lambda: csvi.param("s", 1.0, constraint="positive"), TypeError,
     r"param 's': constraint must be a csvi constraint \(e.g. constraints.positive\), got str"),
    ("param nan", lambda: csvi.param("s", [1.0, np.nan]), ValueError,
     r"param 's': init_value must be finite, got nan at index 1 of an array of shape \(2,\)"),
    ("param outside", lambda: csvi.param("s", -1.0, constraint=constraints.positive),
     ValueError, r"param 's': init_value must be a number > 0, got -1.0"),
    ("param simplex negative",
     lambda: csvi.param("s", [0.5, -0.5], constraint=constraints.simplex), ValueError,
     r"param 's': init_value must be a vector of nonnegative numbers summing to 1 \(rows of "
     r"numbers >= 0 with a positive sum are normalized\), got \[0.5, -0.5\]"),
    ("biject_to str", lambda: T.biject_to("positive"), TypeError,
     r"biject_to: expected a csvi constraint .* got str 'positive'"),
    # ---- a guide that does not fit its model ---------------------------------------
    ("guide shape", _guide_of_wrong_shape, ValueError,
     r"site 'z': the guide's value has shape \(2,\), but the model's Normal there has shape "
     r"\(\) .*give the guide's site the model's shape"),
    ("guide shape in plate", _guide_of_wrong_shape_in_plate, ValueError,
     r"site 'z': the guide's value has shape \(2,\), but the model's Normal there has shape "
     r"\(3,\)"),
    ("guide outside support", _guide_outside_support, ValueError,
     r"site 's': the guide's value is outside the support of the model's Gamma "
     r"\(a number > 0\), got -.*give the guide's site a distribution with the same support"),
]


@pytest.mark.parametrize("make,exc,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_the_culprit(fresh_store, make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()
