"""ML potential models: ANI and SchNet networks, Gaussian process, MACE adapter."""
