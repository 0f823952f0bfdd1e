"""VectorIndex against exact nearest-neighbour ground truth on seeded, face-like synthetic embeddings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from gallery.index import ann, exact, persist
from gallery.index.vector_index import (DuplicateIdError, IndexConfig, IndexCorruptError, SnapshotNotFoundError,
    VectorIndex, VectorIndexError)
from gallery.index.gpu import gpu_available
from samples.embeddings import FaceLikeEmbeddings

DIM = 64
GEN = FaceLikeEmbeddings(dim=DIM, seed=7)
REPO = Path(__file__).resolve().parents[2]


def exact_top(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force ground truth in numpy, independent of faiss."""
    sims = queries @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), ids[order]


def recall_at_1(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found[:, 0] == truth[:, 0]).mean())


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """faiss's OpenMP threads spin badly on a shared, oversubscribed machine; one thread is faster here."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    vectors, _, centres = GEN.gallery(12_000)
    probes, _ = GEN.probes(centres, 300)
    ids = np.arange(len(vectors), dtype=np.int64) * 10 + 5  # sparse ids: nothing may assume id == row
    return {"vectors": vectors, "ids": ids, "probes": probes}


def small(**overrides: object) -> IndexConfig:
    return IndexConfig(background=False, use_gpu=False, train_size=4_000, **overrides)


# ---- exact search and the API contract -------------------------------------------------------


def test_exact_search_matches_brute_force(data):
    index = VectorIndex(DIM, small(kind="flat"))
    index.add(data["ids"][:3000], data["vectors"][:3000])
    sims, ids = index.search(data["probes"], 10)
    true_sims, true_ids = exact_top(data["probes"], data["ids"][:3000], data["vectors"][:3000], 10)
    assert index.kind == "flat"
    assert sims.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (300, 10)
    np.testing.assert_array_equal(ids, true_ids)
    np.testing.assert_allclose(sims, true_sims, atol=1e-5)


@pytest.mark.parametrize("n_queries", [1, 64, 300])
def test_exact_top_k_every_batch_path_matches_brute_force(data, monkeypatch, n_queries):
    monkeypatch.setattr(exact, "_BLOCK_FLOATS", 64 * 700)  # several gallery blocks to merge
    queries, vectors = data["probes"][:n_queries], data["vectors"][:3000]
    sims, rows = exact.exact_top_k(queries, vectors, 50)
    true_sims, true_rows = exact_top(queries, np.arange(3000), vectors, 50)
    np.testing.assert_array_equal(rows, true_rows)
    np.testing.assert_allclose(sims, true_sims, atol=1e-5)


def test_fewer_than_k_pads_with_minus_one_and_minus_inf(data):
    index = VectorIndex(DIM, small())
    sims, ids = index.search(data["probes"][:2], 3)
    assert (ids == -1).all() and np.isneginf(sims).all()
    index.add(data["ids"][:2], data["vectors"][:2])
    sims, ids = index.search(data["probes"][0], 5)  # 1-D query = batch of one
    assert ids.shape == (1, 5)
    assert set(ids[0, :2]) == set(data["ids"][:2]) and (ids[0, 2:] == -1).all()
    assert np.isfinite(sims[0, :2]).all() and np.isneginf(sims[0, 2:]).all()


def test_rejects_duplicates_and_bad_input(data):
    index = VectorIndex(DIM, small())
    index.add(data["ids"][:10], data["vectors"][:10])
    with pytest.raises(ValueError):
        index.add(data["ids"][5:6], data["vectors"][5:6])
    with pytest.raises(DuplicateIdError):
        index.add(np.array([1, 1]), data["vectors"][:2])
    with pytest.raises(ValueError, match="normalised"):
        index.add(np.array([1]), data["vectors"][:1] * 2)
    with pytest.raises(ValueError, match="shape"):
        index.add(np.array([1]), np.ones((1, DIM + 1), np.float32))
    with pytest.raises(ValueError):
        index.search(data["probes"][:1], 0)
    assert len(index) == 10
    with pytest.raises(ValueError, match="pq_m"):
        VectorIndex(DIM, small(pq_m=24))


def test_remove_is_exact_and_reconstruct_returns_stored_vectors(data):
    index = VectorIndex(DIM, small(kind="flat"))
    index.add(data["ids"][:500], data["vectors"][:500])
    gone = data["ids"][:500:3]
    assert index.remove(np.concatenate([gone, gone[:5], [999_999]])) == len(gone)
    assert index.remove(gone) == 0
    assert len(index) == 500 - len(gone)
    assert set(index.ids().tolist()) == set(data["ids"][:500].tolist()) - set(gone.tolist())
    _, ids = index.search(data["vectors"][:500], 20)
    assert not np.isin(ids, gone).any()
    keep = data["ids"][1:500:3]
    np.testing.assert_array_equal(index.vectors(keep), data["vectors"][1:500:3])
    np.testing.assert_array_equal(index.vector(int(keep[0])), data["vectors"][1])
    with pytest.raises(KeyError):
        index.vector(int(gone[0]))
    index.add(gone[:1], data["vectors"][499:500])  # an id may come back after removal, with a new vector
    np.testing.assert_array_equal(index.vector(int(gone[0])), data["vectors"][499])


def test_target_kind_switches_by_size_with_hysteresis():
    config = IndexConfig(exact_max=10_000)
    assert ann.target_kind(config, 10_000, None) == "flat"
    assert ann.target_kind(config, 10_001, None) == "ivfpq"
    assert ann.target_kind(config, 6_000, "ivfpq") == "ivfpq"
    assert ann.target_kind(config, 4_000, "ivfpq") == "flat"
    assert ann.target_kind(IndexConfig(kind="hnsw"), 500, None) == "flat"  # too small to bother
    assert ann.target_kind(IndexConfig(kind="hnsw"), 5_000, None) == "hnsw"


# ---- approximate search ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_approximate_recall_at_1_against_exact(data, kind):
    index = VectorIndex(DIM, small(kind=kind))
    index.add(data["ids"], data["vectors"])
    assert index.kind == kind
    _, true_ids = exact_top(data["probes"], data["ids"], data["vectors"], 10)
    sims, ids = index.search(data["probes"], 10)
    assert recall_at_1(ids, true_ids) >= 0.98
    # similarities are exact re-scores, not quantised estimates
    rows = np.searchsorted(data["ids"], ids[:, 0])
    np.testing.assert_allclose(sims[:, 0], np.einsum("qd,qd->q", data["probes"], data["vectors"][rows]), atol=1e-5)


def test_auto_switches_to_approximate_above_exact_max(data):
    index = VectorIndex(DIM, small(exact_max=5_000))
    index.add(data["ids"][:4000], data["vectors"][:4000])
    assert index.kind == "flat"
    index.add(data["ids"][4000:], data["vectors"][4000:])
    assert index.kind == "ivfpq"
    assert index.last_build["reason"] == "flat -> ivfpq" and index.last_build["size"] == 12_000
    index.remove(data["ids"][2000:])
    assert index.kind == "flat" and len(index) == 2000


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_adds_and_removes_between_searches(data, kind):
    ids, vectors, probes = data["ids"], data["vectors"], data["probes"]
    index = VectorIndex(DIM, small(kind=kind))
    index.add(ids[:8000], vectors[:8000])
    index.add(ids[8000:], vectors[8000:])
    _, before = index.search(probes, 5)
    removed = np.unique(before[:, 0])
    assert index.remove(removed) == len(removed)
    live = ~np.isin(ids, removed)
    _, after = index.search(probes, 5)
    assert not np.isin(after, removed).any()
    _, truth = exact_top(probes, ids[live], vectors[live], 5)
    assert recall_at_1(after, truth) >= 0.95
    # a vector added after the build is found as its own nearest neighbour
    fresh = GEN.strangers(50, stream=9)
    fresh_ids = np.arange(50, dtype=np.int64) + 10_000_000
    index.add(fresh_ids, fresh)
    _, found = index.search(fresh, 1)
    np.testing.assert_array_equal(found[:, 0], fresh_ids)


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_random_interleaved_adds_and_removes_keep_every_live_vector_findable(data, tmp_path, kind):
    rng = np.random.default_rng(3)
    ids, vectors = data["ids"], data["vectors"]
    index = VectorIndex(DIM, small(kind=kind, max_tombstones=0.3))
    index.add(ids[:3000], vectors[:3000])
    live = dict(zip(ids[:3000].tolist(), range(3000)))  # id -> row of data["vectors"]
    spare = list(range(3000, len(ids)))
    for _ in range(15):
        gone = rng.choice(list(live), 150, replace=False)
        assert index.remove(gone) == 150
        for id_ in gone.tolist():
            spare.append(live.pop(id_))
        fresh = [spare.pop(int(rng.integers(len(spare)))) for _ in range(100)]  # removed ids come back too
        index.add(ids[fresh], vectors[fresh])
        live.update(zip(ids[fresh].tolist(), fresh))
    assert sorted(index.ids().tolist()) == sorted(live)
    assert "removed vectors" in index.last_build["reason"]  # tombstones forced a rebuild on the way
    index.save(tmp_path)
    for copy in (index, VectorIndex.load(tmp_path, index.config)):
        probe = rng.choice(list(live), 300, replace=False)
        sims, found = copy.search(vectors[[live[i] for i in probe.tolist()]], 2)
        np.testing.assert_array_equal(found[:, 0], probe)
        np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
        _, found = copy.search(data["probes"], 20)
        assert np.isin(found, list(live)).all()


def test_hnsw_rebuilds_when_too_many_tombstones(data):
    index = VectorIndex(DIM, small(kind="hnsw", max_tombstones=0.2))
    index.add(data["ids"][:5000], data["vectors"][:5000])
    first = index.last_build
    index.remove(data["ids"][:900])  # 18 %: filtered at search time, no rebuild
    assert index.last_build is first
    _, ids = index.search(data["vectors"][:900], 3)
    assert not np.isin(ids, data["ids"][:900]).any()
    index.remove(data["ids"][900:1100])  # 22 % dead: rebuild over the live vectors
    assert index.last_build is not first and "removed vectors" in index.last_build["reason"]
    assert index.last_build["size"] == 3900
    _, ids = index.search(data["vectors"][1100:1200], 1)
    np.testing.assert_array_equal(ids[:, 0], data["ids"][1100:1200])


def test_ivf_retrains_when_data_drifts_and_keeps_ids(data):
    index = VectorIndex(DIM, small(kind="ivfpq", drift_ratio=1.5))
    index.add(data["ids"][:6000], data["vectors"][:6000])
    trained = index.last_build
    # new likenesses from a different region of the sphere: the centroids no longer fit them
    drifted = FaceLikeEmbeddings(dim=DIM, seed=99, spectrum=0.0).gallery(600)[0]
    drifted = drifted * (np.arange(DIM) >= DIM // 2)  # where the enrolled faces carry little energy
    drifted /= np.linalg.norm(drifted, axis=1, keepdims=True)
    drift_ids = np.arange(600, dtype=np.int64) + 50_000_000
    index.add(drift_ids[:100], drifted[:100])  # under 5 % of the trained size: not judged yet
    assert index.last_build is trained
    index.add(drift_ids[100:], drifted[100:])
    assert index.last_build is not trained and "worse" in index.last_build["reason"]
    assert set(index.ids().tolist()) == set(data["ids"][:6000].tolist()) | set(drift_ids.tolist())
    _, found = index.search(drifted[:100], 1)
    np.testing.assert_array_equal(found[:, 0], drift_ids[:100])


def test_ivf_retrains_when_gallery_grows(data):
    index = VectorIndex(DIM, small(kind="ivfpq", growth_ratio=2.0))
    index.add(data["ids"][:2000], data["vectors"][:2000])
    index.add(data["ids"][2000:3900], data["vectors"][2000:3900])
    assert index.last_build["size"] == 2000
    index.add(data["ids"][3900:4100], data["vectors"][3900:4100])
    assert index.last_build["size"] == 4100 and "far from" in index.last_build["reason"]


def test_background_build_replays_mutations_made_meanwhile(data, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real_build = ann.build_ann

    def gated_build(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr("gallery.index.vector_index.build_ann", gated_build)
    index = VectorIndex(DIM, small(exact_max=2_000).model_copy(update={"background": True}))
    index.add(data["ids"][:2500], data["vectors"][:2500])
    assert started.wait(30) and index.building
    assert index.kind == "flat"  # exact search serves while the build runs
    index.add(data["ids"][2500:3000], data["vectors"][2500:3000])
    index.remove(data["ids"][:100])
    _, ids = index.search(data["vectors"][:100], 1)
    assert not np.isin(ids, data["ids"][:100]).any()
    release.set()
    assert index.wait_for_build(60)
    assert index.kind == "ivfpq" and index.last_build["size"] == 2500
    _, ids = index.search(data["vectors"][:100], 3)
    assert not np.isin(ids, data["ids"][:100]).any()
    _, ids = index.search(data["vectors"][2500:2600], 1)
    np.testing.assert_array_equal(ids[:, 0], data["ids"][2500:2600])


@pytest.mark.skipif(not gpu_available(), reason="faiss sees no GPU")
def test_gpu_search_matches_cpu_exact(data):
    gpu = VectorIndex(DIM, small().model_copy(update={"use_gpu": True}))
    gpu.add(data["ids"], data["vectors"])
    assert gpu.kind == "gpu-flat"
    _, true_ids = exact_top(data["probes"], data["ids"], data["vectors"], 10)
    _, ids = gpu.search(data["probes"], 10)
    assert recall_at_1(ids, true_ids) == 1.0
    gpu.remove(true_ids[:, 0])
    _, ids = gpu.search(data["probes"], 10)
    assert not np.isin(ids, true_ids[:, 0]).any()


# ---- persistence -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "ivfpq", "hnsw"])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(data, tmp_path, kind, mmap):
    config = small(kind=kind)
    index = VectorIndex(DIM, config)
    index.add(data["ids"][:5000], data["vectors"][:5000])
    index.remove(data["ids"][:50])
    sims, ids = index.search(data["probes"], 10)
    assert index.save(tmp_path) == 1 and index.version == 1
    loaded = VectorIndex.load(tmp_path, config, mmap=mmap)
    assert loaded.version == 1 and len(loaded) == 4950 and loaded.kind == kind
    assert loaded.last_build is None  # the saved approximate index was loaded, not rebuilt
    loaded_sims, loaded_ids = loaded.search(data["probes"], 10)
    np.testing.assert_array_equal(loaded_ids, ids)
    np.testing.assert_allclose(loaded_sims, sims, atol=1e-6)
    # mutations after a (memory-mapped) load work and leave the snapshot on disk untouched
    loaded.remove(loaded_ids[:, 0])
    loaded.add(data["ids"][:50], data["vectors"][:50])
    assert len(VectorIndex.load(tmp_path, config)) == 4950
    assert loaded.save(tmp_path) == 2


def test_empty_gallery_round_trip(data, tmp_path):
    VectorIndex(DIM, small()).save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert len(loaded) == 0 and loaded.dim == DIM
    loaded.add(data["ids"][:1], data["vectors"][:1])
    _, ids = loaded.search(data["vectors"][:1], 2)
    assert ids.tolist() == [[data["ids"][0], -1]]


def test_versions_increase_and_old_snapshots_are_pruned(data, tmp_path):
    index = VectorIndex(DIM, small(keep_snapshots=2))
    index.add(data["ids"][:100], data["vectors"][:100])
    assert [index.save(tmp_path) for _ in range(4)] == [1, 2, 3, 4]
    assert persist.versions_on_disk(tmp_path) == [4, 3]
    other = VectorIndex(DIM, small())  # a fresh index never reuses a version number in that directory
    assert other.save(tmp_path) == 5


def test_extra_metadata_travels_with_the_snapshot(data, tmp_path):
    index = VectorIndex(DIM, small())
    index.add(data["ids"][:10], data["vectors"][:10])
    index.save(tmp_path, extra={"gallery_version": 41})
    index.save(tmp_path, extra={"gallery_version": 42})
    assert VectorIndex.load(tmp_path).extra == {"gallery_version": 42}
    (persist.snapshot_dir(tmp_path, 2) / "ids.npy").write_bytes(b"torn")
    assert VectorIndex.load(tmp_path).extra == {"gallery_version": 41}  # metadata falls back with the data


def test_load_of_missing_or_empty_directory_raises(tmp_path):
    with pytest.raises(SnapshotNotFoundError):
        VectorIndex.load(tmp_path / "nowhere")
    with pytest.raises(VectorIndexError):
        VectorIndex.load(tmp_path)


def test_crash_before_commit_keeps_last_good_version(data, tmp_path, monkeypatch):
    index = VectorIndex(DIM, small())
    index.add(data["ids"][:100], data["vectors"][:100])
    index.save(tmp_path)
    index.add(data["ids"][100:200], data["vectors"][100:200])

    def crash(*_: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(persist.os, "rename", crash)
    with pytest.raises(OSError):
        index.save(tmp_path)
    monkeypatch.undo()
    assert index.version == 1
    loaded = VectorIndex.load(tmp_path)
    assert loaded.version == 1 and len(loaded) == 100
    assert index.save(tmp_path) == 2 and len(VectorIndex.load(tmp_path)) == 200


def test_process_killed_mid_write_leaves_last_good_version(data, tmp_path):
    np.save(tmp_path / "vectors.npy", data["vectors"][:300])
    script = textwrap.dedent(
        f"""
        import os, numpy as np
        from pathlib import Path
        from gallery.index import persist
        from gallery.index.vector_index import IndexConfig, VectorIndex

        vectors = np.load({str(tmp_path / "vectors.npy")!r})
        index = VectorIndex({DIM}, IndexConfig(use_gpu=False))
        index.add(np.arange(100), vectors[:100])
        index.save(Path({str(tmp_path / "gallery")!r}))
        index.add(np.arange(100, 300), vectors[100:300])
        real_save = np.save

        def die_halfway(path, array):  # the kernel kills us while vectors.npy is half written
            if Path(path).name == "vectors.npy":
                with open(path, "wb") as f:
                    f.write(array.tobytes()[: array.nbytes // 2])
                    f.flush()
                os._exit(137)
            real_save(path, array)

        np.save = die_halfway
        index.save(Path({str(tmp_path / "gallery")!r}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, capture_output=True, timeout=120)
    assert result.returncode == 137, result.stderr.decode()
    leftovers = [p.name for p in (tmp_path / "gallery").iterdir()]
    assert any(name.startswith(".tmp-") for name in leftovers)  # the torn write is really there
    loaded = VectorIndex.load(tmp_path / "gallery")
    assert loaded.version == 1 and sorted(loaded.ids().tolist()) == list(range(100))
    np.testing.assert_array_equal(loaded.vectors(np.arange(100)), data["vectors"][:100])


def test_corrupt_newest_snapshot_falls_back_to_previous(data, tmp_path, caplog):
    index = VectorIndex(DIM, small())
    index.add(data["ids"][:100], data["vectors"][:100])
    index.save(tmp_path)
    index.add(data["ids"][100:200], data["vectors"][100:200])
    index.save(tmp_path)
    newest = persist.snapshot_dir(tmp_path, 2) / "vectors.npy"
    raw = bytearray(newest.read_bytes())
    raw[-7] ^= 0x01  # one flipped bit in one float
    newest.write_bytes(bytes(raw))
    loaded = VectorIndex.load(tmp_path)
    assert loaded.version == 1 and len(loaded) == 100
    assert "checksum" in caplog.text

    (persist.snapshot_dir(tmp_path, 1) / persist.MANIFEST).write_text('{"body": {')  # torn manifest
    with pytest.raises(IndexCorruptError):
        VectorIndex.load(tmp_path)


def test_loading_with_another_kind_rebuilds_instead(data, tmp_path):
    index = VectorIndex(DIM, small(kind="ivfpq"))
    index.add(data["ids"][:5000], data["vectors"][:5000])
    index.save(tmp_path)
    as_hnsw = VectorIndex.load(tmp_path, small(kind="hnsw"))
    assert as_hnsw.kind == "hnsw" and as_hnsw.last_build["reason"] == "flat -> hnsw"
    assert VectorIndex.load(tmp_path, small(kind="flat")).kind == "flat"


def test_save_while_background_build_runs(data, tmp_path):
    config = IndexConfig(use_gpu=False, exact_max=1_500, train_size=2_000)
    index = VectorIndex(DIM, config)
    index.add(data["ids"][:2500], data["vectors"][:2500])
    index.save(tmp_path)  # saves whatever serves now; the loaded copy builds its own index
    assert index.wait_for_build(120)
    loaded = VectorIndex.load(tmp_path, config)
    assert loaded.wait_for_build(120) and loaded.kind == "ivfpq" and len(loaded) == 2500
