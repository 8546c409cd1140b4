"""Fitting engine: targets, priors and optimizers that turn reference data into parameters."""
