"""CI planning: which stacks a change touches (`platform affected`), from the repository's
structure at two commits."""
