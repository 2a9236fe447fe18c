"""Benchmarks that need the engine toolchain and the local cluster (`make bench-fleet`)."""
