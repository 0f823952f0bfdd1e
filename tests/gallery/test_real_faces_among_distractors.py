"""Real people registered among 100,000 synthetic distractor identities: still found, nobody else flagged."""
from __future__ import annotations

import cv2
import faiss
import numpy as np
import pytest

from gallery.enroll import pad_for_detection
from gallery.index.vector_index import VectorIndex
from gallery.index.config import IndexConfig
from samples.embeddings import FaceLikeEmbeddings
from pipeline.config import MatchConfig
from pipeline.faces.align import align_face
from pipeline.faces.identify import identity_scores
from pipeline.types import IdentityInfo, ReferenceHit
from samples.packages import dlib_johns, face_recognition_photos
from samples.photos import package_photo

DISTRACTORS = 100_000
YAO_MING_IN_PLAYERS = np.array([742.0, 167.0])


class _Searcher:
    """The pipeline's GallerySearcher over a bare VectorIndex (no database for 100k identities)."""

    version = 1

    def __init__(self, index: VectorIndex, owners: dict[int, str]):
        self._index, self._owners = index, owners

    def search(self, embeddings, k):
        sims, ids = self._index.search(embeddings, k)
        return [[ReferenceHit(self._owners[int(i)], float(s)) for s, i in zip(rs, ri) if i >= 0]
                for rs, ri in zip(sims, ids)]

    def identity(self, identity_id):
        return IdentityInfo(identity_id, identity_id, "person", "owner", "no_ai")


def _faces(detector, embedder, path, pad=False):
    image = cv2.imread(str(path))
    if pad:
        image = pad_for_detection(image)
    detections = detector.detect(image)
    return detections, embedder.embed([align_face(image, d.landmarks) for d in detections])


def _largest(detector, embedder, path, pad=False):
    detections, embeddings = _faces(detector, embedder, path, pad)
    return embeddings[int(np.argmax([np.prod(d.bbox[2:] - d.bbox[:2]) for d in detections]))]


@pytest.fixture(scope="module")
def real(detector, embedder):
    johns, photos = dlib_johns(), face_recognition_photos()
    enrolled = {name: [_largest(detector, embedder, p, pad=True) for p in paths[:3]] for name, paths in johns.items()}
    enrolled["yao"] = [_largest(detector, embedder, package_photo("yaoming.jpg"))]
    enrolled["obama"] = [_largest(detector, embedder, photos["obama"])]
    genuine = [(name, _largest(detector, embedder, p, pad=True)) for name, paths in johns.items() for p in paths[3:7]]
    genuine += [("obama", _largest(detector, embedder, photos[k])) for k in ("obama2", "obama3")]
    detections, embeddings = _faces(detector, embedder, package_photo("players.jpg"))
    centres = np.array([(d.bbox[:2] + d.bbox[2:]) / 2 for d in detections])
    yao = int(np.argmin(np.linalg.norm(centres - YAO_MING_IN_PLAYERS, axis=1)))
    genuine.append(("yao", embeddings[yao]))
    strangers = [e for i, (d, e) in enumerate(zip(detections, embeddings)) if i != yao and d.bbox[2] - d.bbox[0] >= 36]
    strangers += [_largest(detector, embedder, photos["biden"]), _largest(detector, embedder, package_photo("gdp.jpg")),
                  _largest(detector, embedder, package_photo("grace_hopper.jpg"))]
    return enrolled, genuine, strangers


def test_real_people_found_among_100k_distractors(real):
    enrolled, genuine, strangers = real
    faiss.omp_set_num_threads(1)
    synthetic = FaceLikeEmbeddings(refs_per_identity=1).strangers(DISTRACTORS, stream=7)
    owners = {i: f"distractor-{i}" for i in range(DISTRACTORS)}
    vectors = [synthetic]
    next_id = DISTRACTORS
    for name, refs in enrolled.items():
        for ref in refs:
            owners[next_id] = name
            vectors.append(ref[None, :])
            next_id += 1
    index = VectorIndex(512, IndexConfig())
    index.add(np.arange(next_id, dtype=np.int64), np.concatenate(vectors).astype(np.float32))
    index.wait_for_build()
    assert index.kind != "flat", "100k vectors must be served by the approximate index"
    searcher, match = _Searcher(index, owners), MatchConfig()

    queries = np.stack([e for _, e in genuine] + strangers)
    results = searcher.search(queries, match.top_k)
    for (name, _), hits in zip(genuine, results[:len(genuine)]):
        ranked = identity_scores(hits, searcher)
        assert ranked[0].identity.id == name, (name, ranked[:3])
        assert ranked[0].similarity >= match.threshold, (name, ranked[0].similarity)
    flagged = [identity_scores(h, searcher)[0] for h in results]
    assert not [s for s in flagged if s.identity.id.startswith("distractor") and s.similarity >= match.review_threshold]
    for hits in results[len(genuine):]:
        assert identity_scores(hits, searcher)[0].similarity < match.threshold
