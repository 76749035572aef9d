import matplotlib

matplotlib.use("Agg")  # figures are made headless in the unit tests
