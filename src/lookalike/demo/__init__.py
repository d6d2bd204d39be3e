"""The demo (`python -m lookalike.demo`, `make demo`) and the sample gallery it, the tests and
the benchmarks build from photos that scikit-image and scikit-learn ship (`demo.samples`)."""
