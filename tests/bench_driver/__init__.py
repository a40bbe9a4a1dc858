"""Tests of the benchmark driver (bench/compare.py) and the grpc-echo peer."""
