"""Read models that combine several domains, such as the customer 360."""

from rapport.views.profile360 import find_by_identifier, profile_360

__all__ = ["find_by_identifier", "profile_360"]
