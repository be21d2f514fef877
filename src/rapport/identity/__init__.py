"""The identity graph: identifier kinds and rules, resolution, merges and their undo, conflicts."""
