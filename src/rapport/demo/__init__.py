"""A made-up retailer's customers and six months of their events, for demos, tests and benchmarks.

``generate_world`` returns every event envelope (oldest first) together with the ground truth: which
real person stands behind each identifier, so identity resolution can be scored. Standard library
only, and deterministic for a given size, seed and end.
"""

from rapport.demo.model import Store
from rapport.demo.world import MAX_CUSTOMER_MONTHS, World, WorldSize, generate_world, iter_events, too_big

__all__ = ["MAX_CUSTOMER_MONTHS", "Store", "World", "WorldSize", "generate_world", "iter_events", "too_big"]
