"""Greek estimators: each module holds the one-path formula of one estimator (``fd`` also the
bump sizes); the engine combines them with a model's tangents and scores and a payoff's value and
slope.  Which of them is valid for which payoff, Greek and model: ``validity``.
"""
