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
        "costs O(n) per query (about 1 ms per 20k vectors on one core), approximate adds a build and some recall loss.",
    )
    nlist: int | None = Field(
        None, ge=1,
        description="IVF lists. More lists = fewer vectors scanned per probe but slower training and "
        "more probes needed for the same recall. None = about 2*sqrt(n), chosen at build time.",
    )
    nprobe: int = Field(
        24, ge=1,
        description="IVF lists scanned per query. Recall and latency both rise with it.",
    )
    pq_m: int = Field(
        64, ge=1,
        description="Product-quantiser sub-vectors (bytes per vector at 8 bits); must divide dim. "
        "More = better candidate ranking and more memory.",
    )
    pq_nbits: int = Field(8, ge=4, le=12, description="Bits per PQ sub-vector code.")
    rerank: int = Field(
        128, ge=0,
        description="Approximate candidates re-scored with the exact stored vectors per query (at least k are). "
        "Removes quantisation error from the final ranking; costs about 0.1 us per candidate per dim.",
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree: recall and memory rise with it.")
    ef_construction: int = Field(80, ge=8, description="HNSW build beam: graph quality vs build time.")
    ef_search: int = Field(128, ge=1, description="HNSW search beam: recall vs latency (raised to k when smaller).")
    train_size: int = Field(
        65_536, ge=1_000,
        description="Vectors sampled to train IVF centroids and PQ codebooks: more = better fit, slower training.",
    )
    drift_ratio: float = Field(
        1.25, gt=1.0,
        description="Re-train IVF when vectors added since training quantise this much worse than the "
        "held-out baseline measured at training time.",
    )
    growth_ratio: float = Field(
        4.0, gt=1.0,
        description="Re-train IVF when the gallery grows or shrinks by this factor since training "
        "(nlist chosen for the old size no longer fits).",
    )
    max_tombstones: float = Field(
        0.2, gt=0.0, le=1.0,
        description="HNSW cannot delete: removed vectors are filtered at search time and the graph is rebuilt "
        "when this fraction of it is dead.",
    )
    background: bool = Field(
        True,
        description="Build / re-train approximate indexes on a background thread; exact search or the previous "
        "index serves meanwhile. False = build inline (deterministic, for tests and batch jobs).",
    )
    use_gpu: bool = Field(True, description="Search on a faiss GPU when faiss has GPU support and sees a GPU.")
    keep_snapshots: int = Field(
        2, ge=2, description="Snapshots kept on disk; at least 2 so the previous one survives a bad write."
    )
    seed: int = Field(1234, description="Seed for training samples and k-means, so builds are reproducible.")
