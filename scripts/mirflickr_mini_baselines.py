"""Reference points for runs on the bundled mirflickr-mini dataset: random ranking and CCA.

    python scripts/mirflickr_mini_baselines.py [--components 24 32]

Random ranking: Gaussian embeddings for the 150 test pairs (mean over 10 seeds).
CCA: scikit-learn's CCA fitted on the 580 training pairs, after a PCA to 128 dimensions
per modality (the text columns that never occur in training are dropped first; CCA on
the raw 1,280 x 1,386 features is rank-deficient with 580 pairs and very slow). Test
embeddings are ranked by cosine with the project's metric.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA

from gcnretrieval.data import load_bundled
from gcnretrieval.metrics import retrieval_report


def _fmt(report: dict) -> str:
    return f"i2t {report['i2t_map']:.4f}  t2i {report['t2i_map']:.4f}  mean {report['avg_map']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[24, 32])
    parser.add_argument("--pca", type=int, default=128)
    args = parser.parse_args()
    data = load_bundled("mirflickr-mini")
    labels = torch.tensor(data.test.labels)

    reports = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        image, text = (torch.tensor(rng.standard_normal((len(labels), 64))) for _ in range(2))
        reports.append(retrieval_report(image, text, labels))
    mean = {key: float(np.mean([r[key] for r in reports])) for key in reports[0]}
    print(f"random ranking (10 seeds): {_fmt(mean)}")

    used = data.train.text.std(axis=0) > 0
    image_pca = PCA(args.pca, random_state=0).fit(data.train.image)
    text_pca = PCA(args.pca, random_state=0).fit(data.train.text[:, used])
    train = image_pca.transform(data.train.image), text_pca.transform(data.train.text[:, used])
    test = image_pca.transform(data.test.image), text_pca.transform(data.test.text[:, used])
    for k in args.components:
        cca = CCA(n_components=k, max_iter=500).fit(*train)
        image, text = cca.transform(*test)
        print(f"CCA, {k} components (PCA {args.pca}): {_fmt(retrieval_report(torch.tensor(image), torch.tensor(text), labels))}")


if __name__ == "__main__":
    main()
