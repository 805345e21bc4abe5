"""Traffic for tests and benchmarks: flow sets (flows), frame builders (packets) and the
live-frames generator with its receiver counter (livegen)."""
