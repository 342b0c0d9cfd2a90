"""Numba kernels. One module per family; each public function's kernel is named after it.

- ``eft``      error-free transformations (TwoSum, Fast2Sum, FMA) and double-double sums
- ``exp``      the vectorizable exp with a certified error bound
- ``softmax``  logsumexp, log_softmax, softmax, cross_entropy and its fused gradient
- ``pmf``      entropy, cross_entropy_pmf, kl_divergence

Kernels assume validated input: all validation lives in the Python layer.
"""
