"""Master data: probabilistic matching of profiles that share no identifier.

The engine (:mod:`rapport.matching.engine`) trains a Fellegi-Sunter model with Splink, without labels,
and scores candidate pairs; it works on plain records and knows nothing of the database.
:mod:`rapport.matching.evaluate` measures its decisions against known truth.
"""
