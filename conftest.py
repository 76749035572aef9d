"""Test-session defaults: notebooks (nbval) run in the quick smoke profile unless
PROBDL_PROFILE says otherwise. The kernels nbval starts inherit this environment."""

import os

os.environ.setdefault("PROBDL_PROFILE", "smoke")
