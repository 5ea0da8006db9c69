"""The Redis ledger: the one owner of every key layout and every write.

``keys`` names every key; ``draws`` (sync, for actors) and ``store`` (async,
for the api) are the only modules that write them.
"""
