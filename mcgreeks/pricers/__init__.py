"""Pricers: a model's paths combined with payoffs and estimators, one kernel per model."""
