"""probdl: the helper package of the probabilistic deep learning workbook.

Modules: ``config`` (profiles, device, seeding, data directory), ``data`` (MNIST offline, its
binarizations, the 1-D regression data), ``train`` (the one training loop), ``plotting``,
``vi`` (Gaussian KL, reparameterization), and one module per model family.
"""

from . import config

__version__ = "0.1.0"
__all__ = ["config", "__version__"]
