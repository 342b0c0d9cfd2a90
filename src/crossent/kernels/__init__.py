"""Numba kernels. One module per family; each public function's kernel is named after it.

- ``_base``    the foundation every other module imports (and that imports none of them): the
               one decorator ``jit`` (cache, error model, signature policy), the intrinsics
               (FMA, bit casts, the 512-bit vector request), the LLVM IR loop builders, the
               error-free transformations and double-double operations (TwoSum, Fast2Sum,
               TwoProduct, ``dd_div``, the fixed-order sums ``dd_sum``/``dd_sum2``/``lane_sum``,
               ``row_max``) and the shared constants
- ``exp``      the vectorizable exp with a certified error bound
- ``softmax``  the row statistics (max, terms, sum, log-sum) and logsumexp, log_softmax, softmax
- ``loss``     cross_entropy and its fused gradient, on the row statistics of ``softmax``
- ``options``  the loss with ``z_loss`` / ``logit_softcap``: double-double capped logits, their
               row statistics, the z term (only called when an option is set)
- ``short``    the same row computation for rows of few classes, across a block of rows (one
               row per vector lane): cross_entropy with class indices and its gradient,
               logsumexp, log_softmax, softmax
- ``pmf``      entropy, cross_entropy_pmf, kl_divergence
- ``scaled``   logsumexp with scale factors ``b``, correctly rounded (float64; the fast kernel
               is in ``softmax``)
- ``exact``    the reductions' exact accumulator (integer bins per sign and exponent)
- ``chunked``  rows split into class chunks: the row statistics of ``softmax`` folded chunk
               after chunk, bitwise those of the whole row (used by ``crossent.dask``)
- ``linear``   the float32-pair accumulator of ``linear_cross_entropy``'s weight gradient
- ``divergence`` KL and Jensen-Shannon divergences and the entropy from logits, on the row
               statistics of ``softmax``
- ``binary``   the sigmoid cross-entropy, softplus and log_sigmoid, on ``exp`` and ``softmax``

Imports go one way: ``_base`` <- ``exp`` <- ``softmax`` <- ``loss`` <- ``options``; ``exp``,
``softmax`` <- ``short``, ``binary``, ``divergence`` (``exp``: the correctly rounded KL);
``softmax`` <- ``chunked``; ``_base`` <- ``exact``, ``linear``; ``_base``, ``softmax`` <- ``pmf``
(``softmax``'s double-double logarithm, for the correctly rounded path); ``exp``, ``softmax``,
``pmf`` <- ``scaled``.
Kernels assume validated input: all validation lives in the Python layer.
"""
