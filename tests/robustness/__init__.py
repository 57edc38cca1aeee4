"""Robustness: bad inputs end in one clear line, user files stay untouched, nothing unsafe runs."""
