"""Index tuning knobs, each with the trade-off it controls; passed in, never read from the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IndexKind = Literal["auto", "flat", "ivfpq", "hnsw"]


class IndexConfig(BaseModel):
    """How the gallery index searches, when it switches strategy, and how it keeps itself fresh."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IndexKind = Field(
        "auto",
        description="'flat' = exact search always; 'ivfpq' / 'hnsw' = approximate; "
        "'auto' = flat up to exact_max vectors, ivfpq beyond.",
    )
    exact_max: int = Field(
        50_000, ge=0,
        description="With kind='auto', above this many vectors build an approximate index. Exact search "
        "costs O(n) per query (a memory-bound scan: about 2-3 ms per 10k vectors on one core), approximate adds a "
        "build and some recall loss.",
    )
    nlist: int | None = Field(
        None, ge=1,
        description="IVF lists. More lists = fewer vectors scanned per probe, but slower training and "
        "assignment (both cost n x nlist). None = about sqrt(n), a power of two, chosen at each build.",
    )
    nprobe: int | None = Field(
        None, ge=1,
        description="IVF lists scanned per query; recall and latency both rise with it. Recall depends mostly "
        "on the fraction nprobe/nlist. None = nlist/10, at least 32 (small galleries have few, wide lists).",
    )
    pq_m: int = Field(
        32, ge=1,
        description="Product-quantiser sub-vectors of 4 bits each (fast-scan); must divide dim. "
        "More = better candidate ranking, more memory (m/2 bytes per vector) and slower scans.",
    )
    rerank: int = Field(
        192, ge=1,
        description="Approximate candidates per query re-scored with the exact stored vectors (at least k are). "
        "More recovers neighbours the quantised ranking misplaced, at one 512-d dot product each.",
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree: recall and memory rise with it.")
    ef_construction: int = Field(40, ge=8, description="HNSW build beam: graph quality vs build time.")
    ef_search: int = Field(64, ge=1, description="HNSW search beam: recall vs latency (raised to k when smaller).")
    train_size: int = Field(
        65_536, ge=1_000,
        description="Vectors sampled to train IVF centroids and PQ codebooks: more = better fit, slower training.",
    )
    drift_ratio: float = Field(
        1.5, gt=1.0,
        description="Re-train IVF when vectors added since training sit this many times less close to their "
        "nearest centroid than held-out vectors did at training time (once 5% of the trained size was added).",
    )
    growth_ratio: float = Field(
        4.0, gt=1.0,
        description="Re-train IVF when the gallery grows or shrinks by this factor since training "
        "(nlist chosen for the old size no longer fits).",
    )
    max_tombstones: float = Field(
        0.2, gt=0.0, le=1.0,
        description="Approximate indexes never delete in place: removed vectors are skipped at search time "
        "and the index is rebuilt once this fraction of its entries is dead. Lower = more rebuilds, "
        "higher = more memory and scan time spent on dead entries.",
    )
    background: bool = Field(
        True,
        description="Build / re-train approximate indexes on a background thread; exact search or the previous "
        "index serves meanwhile. False = build inline (deterministic, for tests and batch jobs).",
    )
    use_gpu: bool = Field(
        True, description="Search exactly on a faiss GPU when faiss has GPU support, sees a GPU and the gallery "
        "holds at least 1000 vectors (below that the CPU is faster than the transfer)."
    )
    keep_snapshots: int = Field(
        2, ge=2, description="Snapshots kept on disk; at least 2 so the previous one survives a bad write."
    )
    seed: int = Field(1234, description="Seed for training samples and k-means, so builds are reproducible.")
