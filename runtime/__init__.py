"""The bottom layer every process shares: settings from the environment, logging, Ray's environment.

Nothing here imports another package of ours, so api/, actors/, streams/ and
carnival/ can all depend on it without importing upwards.
"""
