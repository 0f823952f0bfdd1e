"""The character path without CLIP: crops, schedule, tracks, open-set decisions, findings, the gallery.

Embeddings here are built with known cosine similarities, so each rule is tested at its boundary;
tests/test_characters_e2e.py runs the same code on the real tower and real media.
"""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from gallery.characters import CharacterEnrollment, CharacterReference, ReferenceImage
from gallery.enroll import AcceptedReference, EnrollmentResult
from gallery.gallery import CharacterGallery, Gallery
from gallery.index.vector_index import VectorIndex
from gallery.store import GalleryStore
from pipeline.characters import (CharacterCollector, CharacterConfig, CharacterResult, CharacterSample,
                                 CharacterTrack, character_findings, choose_crops, decide_characters,
                                 review_face_matches, salient_box, square_box)
from pipeline.config import MatchConfig
from pipeline.faces.identify import decide_tracks
from pipeline.policy import Action, AiEvidence, AiLevel
from pipeline.types import Disclosure, FaceObservation, FaceQuality, Frame, IdentityInfo, ReferenceHit, Track
from workers.data import migrate

DIM = 512
CONFIG = CharacterConfig()
NO_AI = AiEvidence(AiLevel.NONE, 0.1, Disclosure(), "none")
LIKELY_AI = AiEvidence(AiLevel.LIKELY, 0.9, Disclosure(), "detectors")


def unit(index: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[index] = 1.0
    return v


def at(similarity: float, to: int, other: int = 500) -> np.ndarray:
    """A unit vector with cosine `similarity` to unit(to) and orthogonal to the other axes but `other`."""
    v = similarity * unit(to) + np.sqrt(max(0.0, 1 - similarity ** 2)) * unit(other)
    return v.astype(np.float32)


def person(identity_id: str, kind: str = "person") -> IdentityInfo:
    return IdentityInfo(id=identity_id, name=identity_id.title(), kind=kind, owner=f"{identity_id}-owner",
                        policy="ai_if_labelled")


class Memory:
    """Both searcher protocols over exact inner products, with a cast."""

    version = 1

    def __init__(self, references: dict[str, list[np.ndarray]], kinds: dict[str, str],
                 cast: dict[str, tuple[str, ...]] | None = None):
        self._ids = [i for i, vs in references.items() for _ in vs]
        self._matrix = np.stack([v for vs in references.values() for v in vs])
        self._identities = {i: person(i, kinds.get(i, "character")) for i in references}
        self._cast = cast or {}

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, embeddings: np.ndarray, k: int) -> list[list[ReferenceHit]]:
        sims = np.atleast_2d(embeddings) @ self._matrix.T
        return [[ReferenceHit(self._ids[j], float(row[j])) for j in np.argsort(-row)[:k]] for row in sims]

    def identity(self, identity_id: str) -> IdentityInfo:
        return self._identities[identity_id]

    def cast(self, identity_id: str) -> tuple[IdentityInfo, ...]:
        return tuple(self._identities[i] for i in self._cast.get(identity_id, ()))


def sample(t_s: float, embedding: np.ndarray, region: str = "whole", shot_start: bool = False) -> CharacterSample:
    return CharacterSample(t_s, region, (0, 0, 10, 10), embedding, np.zeros((10, 10, 3), np.uint8), shot_start)


# -- crops ---------------------------------------------------------------------------------------

def test_crops_are_squares_kept_inside_the_frame():
    assert square_box(5, 5, 100, 640, 360) == (0, 0, 100, 100)
    assert square_box(630, 350, 100, 640, 360) == (540, 260, 640, 360)
    assert square_box(320, 180, 1000, 640, 360) == (140, 0, 500, 360)  # never larger than the short side


def cartoon(width: int = 640, height: int = 360) -> np.ndarray:
    """A flat-coloured figure on plain ground, right of centre: what artwork of a mascot looks like."""
    image = np.full((height, width, 3), (200, 210, 220), np.uint8)
    cv2.ellipse(image, (470, 190), (60, 80), 0, 0, 360, (40, 120, 230), -1)
    cv2.circle(image, (450, 170), 10, (0, 0, 0), -1)
    cv2.circle(image, (490, 170), 10, (0, 0, 0), -1)
    return image


def test_salient_box_finds_the_figure_and_nothing_on_flat_ground():
    x0, y0, x1, y1 = salient_box(cartoon())
    assert x0 <= 470 <= x1 and y0 <= 190 <= y1 and x1 - x0 == y1 - y0 < 360
    assert salient_box(np.full((360, 640, 3), 128, np.uint8)) is None


def test_crops_are_whole_then_largest_faces_then_salient():
    image = cartoon()
    small, large = np.array([10, 10, 30, 30.0]), np.array([100, 100, 200, 220.0])
    crops = choose_crops(image, [small, large], CONFIG)
    assert [c.region for c in crops] == ["whole", "face", "salient"]  # the 20 px face gets no crop
    x0, y0, x1, y1 = crops[1].box
    assert x1 - x0 == y1 - y0 == int(120 * CONFIG.face_scale) and x0 <= 150 <= x1
    two = choose_crops(image, [large, large + 250], CONFIG)
    assert [c.region for c in two] == ["whole", "face", "face"]
    assert [c.region for c in choose_crops(image, [], CONFIG.model_copy(update={"max_crops": 0}))] == ["whole"]


# -- schedule ------------------------------------------------------------------------------------

class CountingEmbedder:
    def __init__(self):
        self.calls: list[int] = []

    def embed(self, images, batch_size: int = 16) -> np.ndarray:
        self.calls.append(len(images))
        return np.stack([unit(0) for _ in images])  # the hero's reference


def test_collector_embeds_every_interval_and_shot_starts_in_batches():
    embedder = CountingEmbedder()
    index = Memory({"hero": [unit(0)], "villain": [unit(1)]}, kinds={})
    collector = CharacterCollector(embedder, index, CONFIG.model_copy(update={"batch_size": 4, "max_crops": 0}))
    image = np.zeros((90, 160, 3), np.uint8)
    reasons = {3.1: "scene_cut", 3.2: "keyframe", 7.6: "keyframe"}
    times = sorted({round(0.5 * i, 2) for i in range(21)} | set(reasons))
    for i, t in enumerate(times):
        collector.offer(Frame(i, t, image, reasons.get(t, "interval")), [])
    samples = collector.finish()
    # every 2 s from the last embedded frame; shot starts too, unless within 0.25 s of the last one
    assert [s.t_s for s in samples] == [0.0, 2.0, 3.1, 5.5, 7.5, 9.5]
    assert [s.shot_start for s in samples] == [False, False, True, False, False, False]
    assert embedder.calls == [4, 2] and collector.frames_embedded == 6
    assert all(s.thumbnail is not None for s in samples)  # every crop is the hero: evidence kept


# -- decisions -----------------------------------------------------------------------------------

def two_characters() -> Memory:
    return Memory({"hero": [unit(0)], "villain": [unit(1)]}, kinds={})


def test_consecutive_frames_above_threshold_match_with_their_time_range():
    samples = [sample(0.0, at(0.5, 0)), sample(2.0, at(0.95, 0)), sample(4.0, at(0.93, 0), "face"),
               sample(4.0, at(0.80, 0)), sample(6.0, at(0.94, 0))]
    tracks, matches = decide_characters(samples, two_characters(), CONFIG, first_track_id=7)
    assert [(t.track_id, t.start_s, t.end_s) for t in tracks] == [(7, 2.0, 6.0)]
    assert matches[0].status == "match" and matches[0].identity.id == "hero"
    assert matches[0].face_similarities == pytest.approx((0.95, 0.93, 0.94), abs=1e-4)
    assert tracks[0].hits[1].region == "face"  # the frame's best crop is its evidence
    assert matches[0].vote_fraction == 1.0 and tracks[0].thumbnail is not None


def test_one_frame_or_low_similarity_is_only_weak_and_unrelated_content_no_hit():
    config = CONFIG
    single = decide_characters([sample(1.0, at(0.97, 0))], two_characters(), config)[1]
    assert single[0].status == "weak" and "fewer than 2 frames" in single[0].reason
    low = decide_characters([sample(1.0, at(0.91, 0)), sample(3.0, at(0.91, 0))], two_characters(), config)[1]
    assert low[0].status == "weak" and "below the character threshold" in low[0].reason
    unrelated = [sample(t, at(0.75, 0)) for t in (0.0, 2.0, 4.0)]
    assert decide_characters(unrelated, two_characters(), config) == ([], [])


def test_a_look_alike_registered_beside_it_fails_the_margin():
    alike = Memory({"hero": [unit(0)], "twin": [at(0.99, 0, other=2)]}, kinds={})
    matches = decide_characters([sample(t, at(0.95, 0)) for t in (0.0, 2.0)], alike, CONFIG)[1]
    assert matches[0].status == "weak" and "margin below" in matches[0].reason


def test_tracks_break_at_a_shot_without_the_character_and_after_a_long_gap():
    samples = [sample(0.0, at(0.95, 0)), sample(2.0, at(0.95, 0)),
               sample(2.5, at(0.95, 1), shot_start=True),            # a new shot: the villain
               sample(4.5, at(0.95, 0), shot_start=True), sample(6.5, at(0.95, 0)),
               sample(12.0, at(0.95, 0)), sample(14.0, at(0.95, 0))]  # 5.5 s later: a new track
    tracks, matches = decide_characters(samples, two_characters(), CONFIG)
    assert [(t.candidate_id, t.start_s, t.end_s) for t in tracks] == [
        ("hero", 0.0, 2.0), ("villain", 2.5, 2.5), ("hero", 4.5, 6.5), ("hero", 12.0, 14.0)]
    assert [m.status for m in matches] == ["match", "weak", "match", "match"]


# -- the face path -------------------------------------------------------------------------------

def face_track(track_id: int, embeddings: list[np.ndarray]) -> Track:
    quality = FaceQuality(size_px=100, det_score=0.9, sharpness=100, yaw=0, pitch=0, usable=True, reason=None)
    faces = [FaceObservation(t_s=float(i), frame_index=i, bbox=np.array([0, 0, 100, 100.0]), det_score=0.9,
                             landmarks=np.zeros((5, 2)), embedding=e, quality=quality)
             for i, e in enumerate(embeddings)]
    return Track(track_id=track_id, faces=faces)


def test_a_character_and_its_actor_share_a_face_without_being_look_alikes():
    """An actor's photos registered as a character: the face matches both, and is the character."""
    faces = Memory({"agent": [unit(0)], "actor": [at(0.98, 0, other=3)], "stranger": [unit(5)]},
                   kinds={"actor": "person", "stranger": "person"}, cast={"agent": ("actor",), "actor": ("agent",)})
    track = face_track(1, [at(0.8, 0)] * 3)
    match = MatchConfig()
    before = decide_tracks([track], faces, match)
    assert before[0].status == "weak" and before[0].candidate.id == "agent"  # margin 0.01 over the actor
    after = review_face_matches([track], before, faces, faces, match, CONFIG)
    assert after[0].status == "match" and after[0].identity.id == "agent" and after[0].margin == pytest.approx(0.8)


def test_a_drawn_face_needs_the_character_face_threshold_on_most_faces():
    faces = Memory({"hero": [unit(0)]}, kinds={})
    match = MatchConfig()
    other_character = face_track(1, [at(0.5, 0)] * 4)             # measured: 0.30-0.55 between drawn faces
    mixed = face_track(2, [at(0.45, 0)] * 3 + [at(0.75, 0)] * 2)   # the tracker linked two characters
    same = face_track(3, [at(0.7, 0)] * 4)
    decided = decide_tracks([other_character, mixed, same], faces, match)
    assert [d.status for d in decided] == ["match", "match", "match"]
    reviewed = review_face_matches([other_character, mixed, same], decided, faces, faces, match, CONFIG)
    assert [d.status for d in reviewed] == ["weak", "weak", "match"]
    assert "needs 0.60" in reviewed[1].reason


# -- findings ------------------------------------------------------------------------------------

def image_result(statuses: list[str], cast: dict | None = None) -> CharacterResult:
    index = two_characters()
    samples = [sample(number * 10.0 + 2 * i, at(0.95, 0)) for number, status in enumerate(statuses, start=1)
               for i in range(2 if status == "match" else 1)]
    tracks, matches = decide_characters(samples, index, CONFIG, first_track_id=10)
    assert [m.status for m in matches] == statuses
    return CharacterResult(samples, tracks, matches, frames_embedded=len(samples), cast=cast or {})


def test_image_path_findings_join_the_face_path_and_name_the_cast():
    result = image_result(["match"], cast={"hero": ("Will Ferrell",)})
    findings = character_findings([], result, NO_AI, None, CONFIG)
    assert len(findings) == 1 and findings[0].category == "ip_character"
    assert findings[0].reasons[0] == "character Hero (played by Will Ferrell), found by its image"
    assert isinstance(findings[0].tracks[0], CharacterTrack) and findings[0].action is Action.ALLOW

    face = findings[0]
    face.tracks, face.reasons = [face_track(1, [unit(0)])], []
    merged = character_findings([face], image_result(["match"]), LIKELY_AI, None, CONFIG)
    assert len(merged) == 1 and len(merged[0].tracks) == 2
    assert merged[0].reasons[0] == "character Hero, found by its face and image"


def test_a_weak_image_track_is_a_finding_only_where_it_changes_the_action():
    assert character_findings([], image_result(["weak"]), NO_AI, None, CONFIG) == []
    review = character_findings([], image_result(["weak"]), LIKELY_AI, None, CONFIG)
    assert [f.action for f in review] == [Action.REVIEW]


# -- the gallery ---------------------------------------------------------------------------------

@pytest.fixture
def galleries(tmp_path):
    url = f"sqlite:///{tmp_path / 'likeness.db'}"
    migrate.upgrade(url)
    store = GalleryStore.open(url)
    return Gallery(tmp_path, store), CharacterGallery(tmp_path, store), tmp_path


def still(tmp_path, name: str) -> ReferenceImage:
    path = tmp_path / "refs" / name
    path.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(path), cartoon())
    return ReferenceImage(path, path)


def images(image: ReferenceImage, *axes: int) -> CharacterEnrollment:
    return CharacterEnrollment([CharacterReference(image, "ab" * 32, "whole", (0, 0, 640, 360), unit(a))
                                for a in axes], [])


def faces(image: ReferenceImage, axis: int | None = None) -> EnrollmentResult:
    if axis is None:
        return EnrollmentResult([], [])
    reference = AcceptedReference(image.path, "cd" * 32, unit(axis), [0, 0, 10, 10], 0.9, 50.0, 0.0, 0.0)
    return EnrollmentResult([reference], [])


def test_register_search_reload_and_remove(galleries, tmp_path):
    gallery, characters, home = galleries
    actor_photo, art = still(tmp_path, "actor.png"), still(tmp_path, "art.png")
    actor = gallery.add("Actor", "person", "agency", "no_ai", [], faces(actor_photo, 7))
    hero = characters.add(gallery, "Hero", "studio", "no_ai", [], faces(art, 8), images(art, 0, 1), [actor.id])
    villain = characters.add(gallery, "Villain", "studio", "no_ai", [], faces(art), images(art, 2))
    assert hero.kind == "character" and gallery.version == characters.version == 3
    assert [a.name for a in characters.cast(hero.id)] == ["Actor"]
    assert [c.name for c in characters.cast(actor.id)] == ["Hero"]
    assert len(characters) == 3 and len(gallery) == 2  # the villain has no face reference
    assert [h.identity_id for h in characters.search(unit(2)[None], 1)[0]] == [villain.id]

    snapshot = VectorIndex.load(home / "index" / "characters")
    assert snapshot.extra["gallery_version"] == 3
    reopened = CharacterGallery(home, GalleryStore.open(f"sqlite:///{home / 'likeness.db'}"))
    reopened._build = None  # a current snapshot is loaded, never rebuilt
    assert len(reopened) == 3 and reopened.search(unit(1)[None], 1)[0][0].identity_id == hero.id

    characters.remove(gallery, hero.id)
    assert len(characters) == 1 and len(gallery) == 1 and not (home / "references" / hero.id).exists()
    assert characters.search(unit(0)[None], 5)[0][0].identity_id == villain.id
    assert characters.cast(actor.id) == ()
    assert characters.version == gallery.version == 4


def test_removing_an_actor_unlinks_the_character(galleries, tmp_path):
    gallery, characters, _ = galleries
    art = still(tmp_path, "art.png")
    actor = gallery.add("Actor", "person", "agency", "no_ai", [], faces(art, 7))
    hero = characters.add(gallery, "Hero", "studio", "no_ai", [], faces(art), images(art, 0), [actor.id])
    characters.remove(gallery, actor.id)
    assert characters.cast(hero.id) == () and len(characters) == 1


def test_played_by_must_name_a_registered_person(galleries, tmp_path):
    gallery, characters, home = galleries
    art = still(tmp_path, "art.png")
    hero = characters.add(gallery, "Hero", "studio", "no_ai", [], faces(art), images(art, 0))
    for bad in ("no-such-id", hero.id):
        with pytest.raises(ValueError, match="no registered person"):
            characters.add(gallery, "Sidekick", "studio", "no_ai", [], faces(art), images(art, 1), [bad])
    assert [i.name for i, _ in gallery.identities()] == ["Hero"] and len(characters) == 1
    assert sorted(p.name for p in (home / "references").iterdir()) == [hero.id]  # nothing staged is left
