"""probdl.gan_eval: its names are the ones probdl.gan re-exports for one release (the
functions themselves are tested in tests/test_gan.py)."""

from probdl import gan, gan_eval

MOVED = [
    "optimal_discriminator",
    "value_by_quadrature",
    "jensen_shannon",
    "ring_centers",
    "ring_of_gaussians",
    "mode_coverage",
    "parzen_log_likelihood",
    "select_parzen_sigma",
    "frechet_distance",
    "mlp_features",
]


def test_old_names_are_the_new_functions():
    for name in MOVED:
        assert getattr(gan, name) is getattr(gan_eval, name), name
