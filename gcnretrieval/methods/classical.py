"""The classical closed-form methods: CCA, PLS, and the chance level (:mod:`gcnretrieval.models.baselines`)."""
from gcnretrieval.methods.base import Method, register_method

register_method(Method(
    name="cca",
    paper="Hotelling, Relations between two sets of variates, Biometrika 1936 (as used by Rasiwasia et al., "
          "A new approach to cross-modal multimedia retrieval, ACM MM 2010)",
    summary="canonical correlation analysis of the paired features, ridge-regularised, closed form",
    baseline="cca",
))
register_method(Method(
    name="pls",
    paper="Wold, Partial least squares, Encyclopedia of Statistical Sciences 1985 (the PLS-SVD form)",
    summary="partial least squares: directions of maximal covariance of the paired features, closed form",
    baseline="pls",
))
register_method(Method(
    name="random",
    paper="chance level (no publication)",
    summary="i.i.d. Gaussian embeddings independent of the features: the mAP of a random ranking",
    baseline="random",
))
