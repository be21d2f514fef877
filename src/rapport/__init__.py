"""Rapport: a customer 360 platform.

Every fact about a customer enters as an immutable event, is tied to one person through the identity
graph, and is projected into the golden record, orders, accounts, cases and devices.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
