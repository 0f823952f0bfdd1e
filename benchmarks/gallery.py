"""Gallery index at scale: build time, memory, latency and recall@1 against exact search.

Seeded face-like embeddings (identity centres on an anisotropic unit sphere, several noisy references
each; see ``gallery.synthetic_embeddings``). Queries are fresh images of enrolled identities ("probes",
the case where recall matters) plus images of strangers (whose nearest neighbour is a near-tie among
many unrelated faces, reported separately with the similarity the index loses on them). Besides
recall@1 and recall@10 against exact search, ``own_references_recall_at_10`` counts how many of the
probe identity's own references exact search puts in the top 10 that the index also does: that is what
an identity score built from top-k hits sees (the rest of an exact top 10 are near-tied strangers).

    python -m benchmarks.gallery                      # 10k, 100k, 1M -> benchmarks/results/gallery.{json,png}
    python -m benchmarks.gallery --sizes 10000,100000 --kinds flat,ivfpq

Latency is wall time per call on ``--threads`` faiss threads (default 1 = one core); process CPU time
per call (all threads, so numpy's BLAS threads count too) is reported beside it because on a shared
machine p99 wall time mostly measures the neighbours. Memory is the growth of resident memory from
before the index was created to after its build, with freed heap handed back to the OS both times.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import from the repo root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import faiss
import numpy as np

from gallery.index.ann import target_kind
from gallery.index.vector_index import IndexConfig, VectorIndex
from samples.embeddings import FaceLikeEmbeddings

_LIBC = ctypes.CDLL("libc.so.6")
RESULTS = Path(__file__).resolve().parent / "results"
DIM = 512
KS = (10, 50)
BATCH = 64


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    generator = FaceLikeEmbeddings(dim=DIM, seed=args.seed)
    report = {
        "machine": _machine(),
        "threads": args.threads,
        "data": {**dataclasses.asdict(generator), "probes": args.queries, "strangers": args.strangers},
        "config": IndexConfig().model_dump(),
        "results": [],
        "skipped": [],
    }
    for size in args.sizes:
        data = _dataset(generator, size, args.queries, args.strangers)
        for kind in args.kinds:
            if kind == "hnsw" and size > args.hnsw_limit:
                report["skipped"].append({"size": size, "kind": kind,
                                          "why": f"HNSW build above --hnsw-limit {args.hnsw_limit}"})
                continue
            row = _measure(size, kind, data, args)
            report["results"].append(row)
            print(json.dumps(_summary(row)), flush=True)
        del data
    report["machine"]["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    _plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_ints, default=[10_000, 100_000, 1_000_000],
                        help="gallery sizes, comma-separated")
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["flat", "ivfpq", "hnsw"])
    parser.add_argument("--queries", type=int, default=1000, help="probe queries (enrolled identities)")
    parser.add_argument("--strangers", type=int, default=200, help="stranger queries (not enrolled)")
    parser.add_argument("--flat-queries", type=int, default=100,
                        help="single queries timed for exact search above 100k")
    parser.add_argument("--hnsw-limit", type=int, default=100_000,
                        help="skip HNSW above this size (its build is slow on 2 cores)")
    parser.add_argument("--threads", type=int, default=1, help="faiss threads for build, search and ground truth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "gallery.json")
    return parser


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def _dataset(generator: FaceLikeEmbeddings, size: int, n_probes: int, n_strangers: int) -> dict[str, np.ndarray]:
    started = time.perf_counter()
    vectors, identity, centres = generator.gallery(size)
    probes, probe_identity = generator.probes(centres, n_probes)
    queries = np.vstack([probes, generator.strangers(n_strangers)])
    truth_sims, truth_rows = faiss.knn(queries, vectors, max(KS), metric=faiss.METRIC_INNER_PRODUCT)
    print(f"size {size}: data + exact ground truth in {time.perf_counter() - started:.1f} s", flush=True)
    return {
        "vectors": vectors,
        "ids": np.arange(size, dtype=np.int64),
        "queries": queries,
        "is_probe": np.arange(len(queries)) < n_probes,
        "truth_ids": truth_rows,
        "truth_sims": truth_sims,
        "identity": identity,
        "probe_identity": probe_identity,
    }


def _measure(size: int, kind: str, data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, object]:
    config = IndexConfig(kind=kind, background=False, use_gpu=False)
    rss_before = _rss_mb()
    index = VectorIndex(DIM, config)
    started = time.perf_counter()
    index.add(data["ids"], data["vectors"])
    build_s = time.perf_counter() - started
    rss_growth = _rss_mb() - rss_before
    assert index.kind == kind, f"asked for {kind}, serving {index.kind}"
    row: dict[str, object] = {
        "size": size,
        "kind": kind,
        "auto_kind": target_kind(IndexConfig(), size, None),
        "build_s": round(build_s, 2),
        "build": index.last_build,
        "rss_growth_mb": round(rss_growth, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ann": index.info()["ann"],
    }
    queries = data["queries"]
    timed = len(queries) if kind != "flat" or size <= 100_000 else args.flat_queries
    results = {}
    for k in KS:
        ids, wall, cpu = _single(index, queries[:timed], k)
        results[k] = ids
        row[f"single_k{k}"] = _percentiles(wall, cpu)
    batch_wall, batch_cpu, batch_ids = _batched(index, queries, max(KS))
    row["batched_k50"] = {"batch": BATCH, **_percentiles(batch_wall, batch_cpu),
                          "per_query_ms": round(float(np.sum(batch_wall)) * 1e3 / len(queries), 4)}
    row.update(_accuracy(batch_ids, data))
    row.update(_persistence(index))
    return row


def _single(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index.search(queries[:1], k)  # warm caches once
    found = np.empty((len(queries), k), np.int64)
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    for i in range(len(queries)):
        w0, c0 = time.perf_counter(), time.process_time()
        _, found[i] = index.search(queries[i], k)
        wall[i], cpu[i] = time.perf_counter() - w0, time.process_time() - c0
    return found, wall, cpu


def _batched(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    found, wall, cpu = [], [], []
    for start in range(0, len(queries), BATCH):
        w0, c0 = time.perf_counter(), time.process_time()
        _, ids = index.search(queries[start : start + BATCH], k)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        found.append(ids)
    return np.array(wall), np.array(cpu), np.vstack(found)


def _percentiles(wall: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    def ms(seconds: np.ndarray, q: int) -> float:
        return round(float(np.percentile(seconds, q)) * 1e3, 4)

    return {"n": len(wall), "p50_ms": ms(wall, 50), "p99_ms": ms(wall, 99),
            "cpu_p50_ms": ms(cpu, 50), "cpu_p99_ms": ms(cpu, 99)}


def _accuracy(found: np.ndarray, data: dict[str, np.ndarray]) -> dict[str, float]:
    """Recall against exact search, from the batched k=50 results (ids == rows of the dataset)."""
    truth, probe = data["truth_ids"], data["is_probe"]
    hit1 = found[:, 0] == truth[:, 0]
    hit10 = np.array([len(np.intersect1d(f[:10], t[:10])) / 10 for f, t in zip(found, truth)])
    # what the caller's identity score sees: the probe's own identity's references among the top 10
    n_probes = int(probe.sum())
    own = data["identity"][np.maximum(found[:n_probes, :10], 0)] == data["probe_identity"][:, None]
    own_truth = data["identity"][truth[:n_probes, :10]] == data["probe_identity"][:, None]
    # what a miss costs a stranger: how much lower the best similarity we report is than the true best
    vectors, queries = data["vectors"], data["queries"]
    best = np.einsum("qd,qd->q", vectors[np.maximum(found[:, 0], 0)], queries)
    gap = (data["truth_sims"][:, 0] - best)[~probe]
    return {
        "recall_at_1": round(float(hit1[probe].mean()), 4),
        "recall_at_10": round(float(hit10[probe].mean()), 4),
        "own_references_recall_at_10": round(float(own.sum() / own_truth.sum()), 4),
        "recall_at_1_strangers": round(float(hit1[~probe].mean()), 4),
        "stranger_top1_gap_mean": round(float(gap.mean()), 4),
        "stranger_top1_gap_max": round(float(gap.max()), 4),
    }


def _persistence(index: VectorIndex) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gallery-bench-") as tmp:
        started = time.perf_counter()
        index.save(Path(tmp))
        save_s = time.perf_counter() - started
        snapshot_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
        started = time.perf_counter()
        VectorIndex.load(Path(tmp), index.config, mmap=True)
        load_s = time.perf_counter() - started
    return {"save_s": round(save_s, 2), "load_mmap_s": round(load_s, 2), "snapshot_mb": round(snapshot_mb, 1)}


def _rss_mb() -> float:
    """Resident memory after returning freed heap to the OS, so growth means memory still held."""
    gc.collect()
    _LIBC.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _machine() -> dict[str, object]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "load_before": os.getloadavg(),
    }


def _summary(row: dict[str, object]) -> dict[str, object]:
    keys = ("size", "kind", "build_s", "rss_growth_mb", "recall_at_1", "own_references_recall_at_10",
            "recall_at_1_strangers")
    return {**{key: row[key] for key in keys}, "single_k10": row["single_k10"], "batched_k50": row["batched_k50"]}


def _plot(report: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, rec) = plt.subplots(1, 2, figsize=(12, 4.5))
    kinds = sorted({row["kind"] for row in report["results"]})
    for kind in kinds:
        rows = sorted((r for r in report["results"] if r["kind"] == kind), key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        line = lat.plot(sizes, [r["single_k10"]["p50_ms"] for r in rows], "o-", label=f"{kind} p50")[0]
        lat.plot(sizes, [r["single_k10"]["p99_ms"] for r in rows], "s--", color=line.get_color(), label=f"{kind} p99")
        lat.plot(sizes, [r["single_k10"]["cpu_p99_ms"] for r in rows], "d-.", color=line.get_color(),
                 label=f"{kind} p99 CPU time")
        lat.plot(sizes, [r["batched_k50"]["per_query_ms"] for r in rows], "^:", color=line.get_color(),
                 label=f"{kind} batched/query")
        rec.plot(sizes, [r["recall_at_1"] for r in rows], "o-", color=line.get_color(), label=f"{kind} probes")
        rec.plot(sizes, [r["own_references_recall_at_10"] for r in rows], "s--", color=line.get_color(),
                 label=f"{kind} own references in top 10")
        rec.plot(sizes, [r["recall_at_1_strangers"] for r in rows], "x:", color=line.get_color(),
                 label=f"{kind} strangers")
    lat.axhline(5, color="grey", lw=0.8)
    lat.set(xscale="log", yscale="log", xlabel="gallery size (vectors)", ylabel="ms per query (k=10; batched k=50)",
            title=f"search latency, {report['threads']} faiss thread(s)")
    rec.axhline(0.99, color="grey", lw=0.8)
    rec.set(xscale="log", xlabel="gallery size (vectors)", ylabel="recall vs exact", ylim=(0, 1.02),
            title="recall against exact search")
    for ax in (lat, rec):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
