"""Benchmarks behind ``rapport bench``: each prints its figures, last line one JSON object."""
