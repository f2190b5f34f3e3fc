"""``mlcca``: multi-label CCA, Ranjan, Rasiwasia and Jawahar, *Multi-Label Cross-modal Retrieval*, ICCV 2015.

Closed form (:class:`gcnretrieval.models.baselines.MultiLabelCCA`): CCA whose cross-covariance runs over all
pairs of training items, each weighted by the cosine similarity of their label vectors, whitened by the
within-modality covariances. The paper also has a faster variant (Fast ml-CCA) that is not reproduced here.
"""
from gcnretrieval.methods.base import Method, register_method

register_method(Method(
    name="mlcca",
    paper="Ranjan, Rasiwasia, Jawahar: Multi-Label Cross-modal Retrieval, ICCV 2015",
    summary="multi-label CCA: cross-covariance over all pairs of items weighted by label similarity, closed form",
    baseline="mlcca",
))
