"""`carnival bench ...`: measure Carnival's paths against baselines on this machine, in one run."""
