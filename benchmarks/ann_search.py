"""Exact vs FAISS search at scale: build and query time, recall@k of the approximate indexes.

    python benchmarks/ann_search.py                       # 1,000,000 x 64-d, 1,000 queries
    python benchmarks/ann_search.py --num-items 100000 --no-append

The database imitates trained embeddings: ``--clusters`` Gaussian clusters (items of one
cluster share a direction, as items sharing labels do) plus isotropic noise; queries are
drawn from the same distribution, not from the database. Exact search is
:class:`gcnretrieval.retrieval.ExactIndex` (chunked torch matmul + top-k); recall@k of an
index is the mean fraction of the exact top-k it returns. Prints a markdown table and
appends it to ``benchmarks/RESULTS.md`` under a heading naming the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gcnretrieval.retrieval import ExactIndex, FaissIndex
from gcnretrieval.training import cpu_model




def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def make_data(num_items: int, num_queries: int, dim: int, clusters: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):  # bounded temporaries
            stop = min(start + 100_000, n)
            noise_block = rng.standard_normal((stop - start, dim), dtype=np.float32) * (noise / np.sqrt(dim))
            out[start:stop] = centres[rng.integers(0, clusters, stop - start)] + noise_block
        return out

    return draw(num_items), draw(num_queries)


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def recall(truth: torch.Tensor, found: torch.Tensor) -> float:
    k = truth.shape[1]
    hits = [len(set(a) & set(b)) for a, b in zip(truth.tolist(), found.tolist())]
    return float(np.mean(hits)) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=1_000_000)
    parser.add_argument("--num-queries", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=1_000)
    parser.add_argument("--noise", type=float, default=1.0, help="noise norm relative to the unit cluster centre")
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf"], choices=["flat", "hnsw", "ivf"])
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256],
                        help="HNSW query candidate lists to try (one build)")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32], help="IVF cells scanned to try (one build)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()

    import faiss

    torch.set_num_threads(args.threads)
    load_before = load_average()
    database, queries = make_data(args.num_items, args.num_queries, args.dim, args.clusters, args.noise, args.seed)
    print(f"data: {args.num_items:,} x {args.dim}-d float32 ({database.nbytes / 2**30:.2f} GiB), "
          f"{args.num_queries:,} queries; load average {load_before}", flush=True)

    exact, exact_build = timed(lambda: ExactIndex(database))
    (_, truth), exact_query = timed(lambda: exact.search(queries, args.k))
    print(f"exact: build {exact_build:.2f} s, query {exact_query:.2f} s", flush=True)
    rows = [("ExactIndex (torch matmul + top-k)", exact_build, exact_query, 1.0)]
    del exact

    options = {
        "flat": {},
        "hnsw": {"hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction},
        "ivf": {"nlist": args.nlist},
    }
    settings = {
        "flat": [({}, "FaissIndex flat (IndexFlatIP)")],
        "hnsw": [({"ef_search": ef}, f"FaissIndex hnsw (M={args.hnsw_m}, efC={args.ef_construction}, efS={ef})")
                 for ef in args.ef_search],
        "ivf": [({"nprobe": n}, f"FaissIndex ivf (nlist={args.nlist}, nprobe={n})") for n in args.nprobe],
    }
    for kind in args.kinds:
        index, build = timed(lambda: FaissIndex(database, kind=kind, threads=args.threads, seed=args.seed,
                                                **options[kind]))
        for search_options, label in settings[kind]:
            index.set_search_options(**search_options)
            (_, found), query = timed(lambda: index.search(queries, args.k))
            rows.append((label, build, query, recall(truth, found)))
            print(f"{label}: build {build:.2f} s, query {query:.2f} s, recall@{args.k} {rows[-1][3]:.4f}", flush=True)
        del index

    load_after = load_average()
    table = [f"| index | build (s) | {args.num_queries:,} queries (s) | ms / query | query speed-up vs exact "
             f"| recall@{args.k} vs exact |", "|---|---:|---:|---:|---:|---:|"]
    for name, build, query, rec in rows:
        table.append(f"| {name} | {build:.2f} | {query:.2f} | {1000 * query / args.num_queries:.3f} "
                     f"| {exact_query / query:.1f}x | {rec:.4f} |")
    heading = (f"## ANN search: {args.num_items:,} items x {args.dim}-d, {args.num_queries:,} queries, top {args.k} "
               f"({time.strftime('%Y-%m-%d')})")
    machine = (f"{cpu_model()}, {os.cpu_count()} cores ({args.threads} threads used), torch {torch.__version__}, "
               f"faiss {faiss.__version__}, Python {platform.python_version()}; load average (1/5/15 min) "
               f"{load_before} before, {load_after} after (shared machine: other jobs were running)")
    data = (f"Data: {args.clusters:,} Gaussian clusters on the unit sphere plus noise of norm ~{args.noise} "
            f"(seed {args.seed}); queries from the same distribution; vectors L2-normalised (cosine).")
    block = "\n".join([heading, "", machine, "", data, "", *table, ""])
    print()
    print(block)
    if not args.no_append:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        existing = results.read_text(encoding="utf-8") if results.is_file() else "# Benchmark results\n"
        results.write_text(existing.rstrip("\n") + "\n\n" + block, encoding="utf-8")
        print(f"appended to {results}")


if __name__ == "__main__":
    main()
