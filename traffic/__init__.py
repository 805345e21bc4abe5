"""Traffic for tests and benchmarks: flow sets (flows), frame builders (packets) and the
lab traffic generators with their receiver counter (labgen: livegen, tcgen) and the baseline
NFs of the lab benchmarks (baselines)."""
