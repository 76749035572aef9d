"""Moved to :mod:`probdl.experiments.laplace` (chapter 07's UCI comparison, with the other
chapters' experiments in :mod:`probdl.experiments`). This alias keeps
``from probdl import laplace_experiments`` working for one release (CONTRIBUTING.md, "Names
that moved")."""

import sys

from .experiments import laplace as moved

sys.modules[__name__] = moved
