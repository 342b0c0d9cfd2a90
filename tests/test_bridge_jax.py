"""crossent.jax: the NumPy API's bits under jit, grad, value_and_grad and vmap; optax's semantics.

- values and gradients bitwise equal to ``crossent.cross_entropy(_value_and_grad)`` over a grid
  of options, eagerly and under ``jit``;
- ``vmap`` (the callbacks use ``vmap_method="expand_dims"``): batched logits, batched labels,
  batched weights, nested vmap, reduced and per-item losses, all equal to separate NumPy calls;
- the optax-compatible losses against optax (values to 1 ulp of optax's float64 computation for
  float16/float32 inputs, gradients too); the refusals (weight gradients, second derivatives).

Skipped with the reason when JAX is not installed (the optional 'jax' extra).
"""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (the optional 'jax' extra)")
cj = pytest.importorskip("crossent.jax")

import jax.numpy as jnp  # noqa: E402

import crossent  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64 (as crossent._bench does)

DTYPES = [np.float16, np.float32, np.float64]


def _case(shape, axis, probs, weighted, dtype, seed, ignore=False):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    C = shape[axis]
    if probs:
        t = crossent.softmax(rng.standard_normal(shape), axis=axis).astype(dtype)
    else:
        t = rng.integers(0, C, np.delete(np.array(shape), axis % len(shape)))
        if ignore:
            t[rng.random(t.shape) < 0.3] = 1
    w = (rng.random(C) + 0.5).astype(dtype) if weighted else None
    return x, t, w


def _vjp(f, x):
    """Value and the gradient for a cotangent of ones (the gradient of the sum for 'none')."""
    y, pullback = jax.vjp(f, x)
    return y, pullback(jnp.ones_like(y))[0]


# every shape/axis, target kind and reduction; weight, smoothing and ignore_index cycle through
# the cases (the options themselves are the NumPy API's, tested there: here, that they get through)
GRID = [
    (shape, axis, probs, k % 2 == 1, red, 0.1 if k % 3 == 0 else 0.0, not probs and k % 4 == 1)
    for k, ((shape, axis), probs, red) in enumerate(itertools.product(
        [((7,), 0), ((9, 7), -1), ((4, 7, 3), 1)], [False, True], ["none", "mean", "sum"]
    ))
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_values_and_gradients_are_the_numpy_apis_bits(dtype):
    for k, (shape, axis, probs, weighted, red, eps, ignore) in enumerate(GRID):
        x, t, w = _case(shape, axis, probs, weighted, dtype, seed=k, ignore=ignore)
        kw = dict(axis=axis, weight=w, reduction=red, label_smoothing=eps, ignore_index=1 if ignore else -100)
        where = f"shape={shape} axis={axis} probs={probs} {kw}"
        want_loss, want_grad = crossent.cross_entropy_value_and_grad(x, t, **kw)

        def f(a):
            return cj.cross_entropy(a, t, **kw)

        run = jax.jit(lambda a: _vjp(f, a)) if k % 2 else (lambda a: _vjp(f, a))  # eager and jit
        loss, grad = run(jnp.asarray(x))
        assert loss.dtype == dtype and grad.dtype == dtype, where
        assert np.array_equal(np.asarray(loss), np.asarray(want_loss), equal_nan=True), where
        assert np.array_equal(np.asarray(grad), want_grad, equal_nan=True), where
        assert np.array_equal(np.asarray(f(x)), crossent.cross_entropy(x, t, **kw), equal_nan=True), where
    # value_and_grad of the mean: the same bits again
    x, t, w = _case((9, 7), -1, False, True, dtype, seed=99)
    loss, grad = jax.value_and_grad(lambda a: cj.cross_entropy(a, t, weight=w))(x)
    want_loss, want_grad = crossent.cross_entropy_value_and_grad(x, t, weight=w)
    assert loss == want_loss and np.array_equal(np.asarray(grad), want_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_family_is_crossents(dtype):
    rng = np.random.default_rng(1)
    x = (4 * rng.standard_normal((3, 5, 2))).astype(dtype)
    for axis in (0, -1):
        assert np.array_equal(np.asarray(cj.log_softmax(x, axis)), crossent.log_softmax(x, axis=axis))
        assert np.array_equal(np.asarray(cj.softmax(x, axis)), crossent.softmax(x, axis=axis))
        for keep in (False, True):
            got = cj.logsumexp(x, axis, keep)
            assert np.array_equal(np.asarray(got), crossent.logsumexp(x, axis=axis, keepdims=keep))
            assert got.shape == jax.nn.logsumexp(x, axis, keepdims=keep).shape


def test_softmax_family_gradients_and_second_derivatives_match_jax_nn():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5))
    c = rng.standard_normal((3, 5))
    pairs = [(cj.log_softmax, jax.nn.log_softmax), (cj.softmax, jax.nn.softmax),
             (lambda a: cj.logsumexp(a, -1, True), lambda a: jax.nn.logsumexp(a, -1, keepdims=True))]
    for ours, theirs in pairs:
        def scalar(fn):
            return lambda a: jnp.sum(jnp.sin(fn(a)) * c)  # a non-linear use, so the Hessian is not trivial
        g1, g2 = jax.grad(scalar(ours))(x), jax.grad(scalar(theirs))(x)
        np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-15)
        h1 = jax.grad(lambda a: jnp.sum(jax.grad(scalar(ours))(a) ** 2))(x)
        h2 = jax.grad(lambda a: jnp.sum(jax.grad(scalar(theirs))(a) ** 2))(x)
        np.testing.assert_allclose(h1, h2, rtol=1e-12, atol=1e-14)


# -- vmap --------------------------------------------------------------------------------------


def test_vmap_per_item_losses_is_one_call_with_the_bits_of_separate_calls():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 6, 5)).astype(np.float32)
    Y = rng.integers(0, 5, (4, 6))
    w = rng.random(5) + 0.5
    f = cj.softmax_cross_entropy_with_integer_labels
    got = jax.vmap(f)(X, Y)  # both batched
    want = np.stack([crossent.cross_entropy(X[i], Y[i], reduction="none") for i in range(4)])
    assert np.array_equal(np.asarray(got), want)
    got = jax.vmap(f, in_axes=(0, None))(X, Y[0])  # labels shared
    assert np.array_equal(np.asarray(got), np.stack([crossent.cross_entropy(X[i], Y[0], reduction="none") for i in range(4)]))
    got = jax.vmap(f, in_axes=(None, 0))(X[0], Y)  # logits shared
    assert np.array_equal(np.asarray(got), np.stack([crossent.cross_entropy(X[0], Y[i], reduction="none") for i in range(4)]))
    g = jax.vmap(lambda a, y: cj.cross_entropy(a, y, weight=w, reduction="none"), in_axes=(1, 1), out_axes=1)(X, Y)
    assert np.array_equal(np.asarray(g), np.stack([crossent.cross_entropy(X[:, j], Y[:, j], weight=w, reduction="none")
                                                   for j in range(6)], axis=1))
    for fn, np_fn in ((cj.log_softmax, crossent.log_softmax), (cj.softmax, crossent.softmax)):
        assert np.array_equal(np.asarray(jax.vmap(fn, in_axes=1, out_axes=1)(X)),
                              np.stack([np_fn(X[:, j]) for j in range(6)], axis=1))


def test_vmap_of_grad_of_reduced_losses_nested_and_batched_weights():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 2, 6, 5))
    Y = rng.integers(0, 5, (3, 2, 6))
    W = rng.random((2, 5)) + 0.5
    vg = jax.value_and_grad(lambda a, y, w: cj.cross_entropy(a, y, weight=w, label_smoothing=0.1))
    # outer vmap over X and Y's first axis, inner over the second axis of X, Y and the weights
    loss, grad = jax.jit(jax.vmap(jax.vmap(vg, in_axes=(0, 0, 0)), in_axes=(0, 0, None)))(X, Y, W)
    for i, j in np.ndindex(3, 2):
        wl, wg = crossent.cross_entropy_value_and_grad(X[i, j], Y[i, j], weight=W[j], label_smoothing=0.1)
        assert loss[i, j] == wl and np.array_equal(np.asarray(grad[i, j]), wg)


# -- optax -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_optax_drop_ins_match_optax(dtype):
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(5)
    x = (3 * rng.standard_normal((64, 10))).astype(dtype)
    y = rng.integers(0, 10, 64)
    p = crossent.softmax(rng.standard_normal((64, 10))).astype(dtype)
    eps = float(np.finfo(dtype).eps)
    pairs = [(cj.softmax_cross_entropy_with_integer_labels, optax.softmax_cross_entropy_with_integer_labels, y),
             (cj.softmax_cross_entropy, optax.softmax_cross_entropy, p)]
    for ours, theirs, lab in pairs:
        a, ga = jax.value_and_grad(lambda z: ours(z, lab).sum())(x)
        # optax in float64 as the reference; crossent is correctly rounded in practice for
        # float16/float32, so within 1 ulp of it (optax's own float32 result is not, see docs)
        lab64 = lab if lab.dtype.kind == "i" else lab.astype(np.float64)
        per64 = np.asarray(theirs(x.astype(np.float64), lab64))
        per = np.asarray(ours(x, lab))
        assert per.dtype == dtype and per.shape == (64,)
        _, gb = jax.value_and_grad(lambda z: theirs(z, lab64).sum())(x.astype(np.float64))
        if dtype == np.float64:
            # optax's float64 loss is logsumexp minus a logit: a few ulp of their size
            tol = 8 * eps * (1 + np.abs(x).max() + np.log(10))
            assert np.max(np.abs(per - per64)) <= tol
            assert np.max(np.abs(np.asarray(ga) - np.asarray(gb))) <= 8 * eps
        else:
            assert np.max(crossent.ulp_error(per, per64, dtype)) <= 1.0
            assert np.max(crossent.ulp_error(np.asarray(ga), np.asarray(gb), dtype)) <= 1.0
    # probability labels broadcast as in optax; their gradient is optax's too
    lab = p[0]
    np.testing.assert_array_equal(np.asarray(cj.softmax_cross_entropy(x, lab)),
                                  crossent.cross_entropy(x, np.broadcast_to(lab, x.shape), reduction="none"))
    x64, p64 = x.astype(np.float64), p.astype(np.float64)
    gt1 = jax.grad(lambda t: cj.softmax_cross_entropy(x64, t).sum())(p64)
    gt2 = jax.grad(lambda t: optax.softmax_cross_entropy(x64, t).sum())(p64)
    np.testing.assert_allclose(gt1, gt2, rtol=1e-13, atol=1e-14)


def test_probability_target_gradient_with_every_option():
    optax = pytest.importorskip("optax")  # noqa: F841  (jax.nn is the reference here)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5, 3))
    p = crossent.softmax(rng.standard_normal((4, 5, 3)), axis=1)
    w = rng.random(5) + 0.5
    for red, eps in itertools.product(["none", "mean", "sum"], [0.0, 0.2]):
        def reference(t):
            tt = (1 - eps) * t + eps / 5
            per = -jnp.sum(w[None, :, None] * tt * jax.nn.log_softmax(x, axis=1), axis=1)
            return {"none": per, "sum": per.sum(), "mean": per.mean()}[red]
        c = rng.random((4, 3)) if red == "none" else 1.0
        g1 = jax.vjp(lambda t: cj.cross_entropy(x, t, axis=1, weight=w, reduction=red, label_smoothing=eps), p)[1](
            jnp.asarray(c) if red == "none" else jnp.asarray(1.0))[0]
        g2 = jax.vjp(reference, p)[1](jnp.asarray(c) if red == "none" else jnp.asarray(1.0))[0]
        np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-15, err_msg=f"{red} {eps}")
    # a target of another float dtype gets a cotangent of its own dtype
    g = jax.grad(lambda t: cj.cross_entropy(x, t, axis=1))(p.astype(np.float32))
    assert g.dtype == jnp.float32


# -- what is refused, and how ------------------------------------------------------------------


def test_refusals_are_clear():
    x, y = np.zeros((3, 4)), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="weight"):
        jax.grad(lambda w: cj.cross_entropy(x, y, weight=w))(jnp.ones(4))
    # ... a weight that is not differentiated is fine
    jax.grad(lambda a: cj.cross_entropy(a, y, weight=jnp.ones(4)))(x)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        jax.grad(lambda a: jnp.sum(jax.grad(lambda b: cj.cross_entropy(b, y))(a) ** 2))(x)
    with pytest.raises(TypeError, match="custom_vjp"):  # JAX's own message: no forward mode
        jax.jacfwd(lambda a: cj.cross_entropy(a, y))(x)
    with pytest.raises(ValueError, match="reduction"):
        cj.cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="target"):
        cj.cross_entropy(x, y[:2])
    with pytest.raises(ValueError, match="weight"):
        cj.cross_entropy(x, y, weight=jnp.ones(3))
    with pytest.raises(TypeError, match="labels"):
        cj.softmax_cross_entropy_with_integer_labels(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="axis"):
        cj.log_softmax(x, axis=2)
    # a value only the data reveals is found on the host: a runtime error naming it
    with pytest.raises(Exception, match="not a class index"):
        jax.block_until_ready(jax.jit(cj.softmax_cross_entropy_with_integer_labels)(x, np.array([0, 1, 4])))
    with pytest.raises(Exception, match="not a class index"):  # optax's function ignores no label
        jax.block_until_ready(cj.softmax_cross_entropy_with_integer_labels(x, np.array([0, 1, -100])))


def test_bfloat16_goes_through_the_numpy_api():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5)).astype(ml_dtypes.bfloat16)
    y = rng.integers(0, 5, 6)
    loss, grad = jax.value_and_grad(cj.cross_entropy)(jnp.asarray(x), y)
    want_loss, want_grad = crossent.cross_entropy_value_and_grad(x, y)
    assert loss.dtype == jnp.bfloat16
    assert np.array_equal(np.asarray(loss).view(np.int16), np.asarray(want_loss).view(np.int16))
    assert np.array_equal(np.asarray(grad).view(np.int16), want_grad.view(np.int16))


def test_docstring_examples_run():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in doctest.DocTestFinder().find(cj, "crossent.jax"):
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 8 and result.failed == 0


def test_rounding_correct_gives_the_numpy_apis_correct_bits():
    """``rounding="correct"``: the host calls run in that mode (on JAX's threads, where the
    caller's ``crossent.rounding`` is not in effect), so values and the loss's gradient are the
    NumPy API's bits in mode "correct" (themselves checked against the oracle in
    tests/test_correct_rounding*.py), eagerly, under jit and under vmap; and they differ from
    the fast mode's on these rows (so the test can tell the modes apart)."""
    rng = np.random.default_rng(7)
    x = 4 * rng.standard_normal((64, 10))
    y = rng.integers(0, 10, 64)
    with crossent.rounding("correct"):
        want = {
            "log_softmax": crossent.log_softmax(x),
            "softmax": crossent.softmax(x),
            "logsumexp": crossent.logsumexp(x, axis=-1),
            "none": crossent.cross_entropy(x, y, reduction="none", z_loss=1e-3),
        }
        want_loss, want_grad = crossent.cross_entropy_value_and_grad(x, y, logit_softcap=5.0)
    got = {
        "log_softmax": cj.log_softmax(x, rounding="correct"),
        "softmax": jax.jit(lambda a: cj.softmax(a, rounding="correct"))(x),
        "logsumexp": jax.vmap(lambda r: cj.logsumexp(r, rounding="correct"))(x),
        "none": cj.cross_entropy(x, y, reduction="none", z_loss=1e-3, rounding="correct"),
    }
    differs = 0
    for k in want:
        assert np.array_equal(np.asarray(got[k]), want[k]), k
        differs += int(np.sum(np.asarray(got[k]) != {
            "log_softmax": crossent.log_softmax(x), "softmax": crossent.softmax(x),
            "logsumexp": crossent.logsumexp(x, axis=-1),
            "none": crossent.cross_entropy(x, y, reduction="none", z_loss=1e-3)}[k]))
    assert differs > 0
    loss, grad = jax.jit(jax.value_and_grad(
        lambda a: cj.cross_entropy(a, y, logit_softcap=5.0, rounding="correct")))(x)
    assert loss == want_loss and np.array_equal(np.asarray(grad), want_grad)
    # the optax drop-ins pass it on
    assert np.array_equal(np.asarray(cj.softmax_cross_entropy_with_integer_labels(
        x, y, rounding="correct")), _correct_ce(x, y))


def _correct_ce(x, y):
    with crossent.rounding("correct"):
        return crossent.cross_entropy(x, y, reduction="none")


def test_rounding_argument_and_the_context_mode():
    """Without ``rounding=``, ``crossent.rounding("correct")`` in effect raises (the mode
    would not reach the host calls); an explicit ``rounding`` works inside it; a bad value is
    a ValueError naming the argument."""
    x = np.zeros((2, 3))
    with crossent.rounding("correct"):
        for call in (lambda: cj.log_softmax(x), lambda: cj.softmax(x), lambda: cj.logsumexp(x),
                     lambda: cj.cross_entropy(x, np.array([0, 1])),
                     lambda: cj.softmax_cross_entropy(x, x + 1 / 3)):
            with pytest.raises(NotImplementedError, match="rounding='correct'"):
                call()
        assert np.array_equal(np.asarray(cj.softmax(x, rounding="correct")), np.full((2, 3), 1 / 3))
        assert np.array_equal(np.asarray(cj.softmax(x, rounding="fast")), crossent.softmax(x))
    with pytest.raises(ValueError, match="rounding"):
        cj.logsumexp(x, rounding="exact")
