"""Near-duplicates on real photos: a re-post after crop and re-encode, a mirror and a text overlay stay
within the match line of the original; unrelated real photos stay beyond it; clusters group re-posts.
And the ladder: counts → rung, with the evidence it rests on."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.near_duplicates import MATCH_BITS, clusters, distance, fingerprint, nearest
from samples.photos import PACKAGE_PHOTOS, package_photo
from workers.scans.ladder import Evidence, LadderConfig, LadderStep, recommend


def _photo(name: str) -> np.ndarray:
    return cv2.imread(str(package_photo(name)))


def _crop_reencode(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    cropped = image[h // 20:h - h // 20, w // 20:w - w // 20]
    small = cv2.resize(cropped, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR)


def _mirror_text(image: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(image[:, ::-1]).copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (0, h - h // 6), (w, h), (0, 0, 0), -1)
    cv2.putText(out, "so true #viral", (w // 20, h - h // 16), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, w / 900),
                (255, 255, 255), 2)
    return out


@pytest.mark.parametrize("name", sorted(PACKAGE_PHOTOS))
def test_reposts_match_and_strangers_do_not(name):
    original = fingerprint(_photo(name))
    assert original.usable
    assert distance(original, fingerprint(_crop_reencode(_photo(name)))) <= MATCH_BITS
    assert distance(original, fingerprint(_mirror_text(_photo(name)))) <= MATCH_BITS
    others = [fingerprint(_photo(other)) for other in PACKAGE_PHOTOS if other != name]
    assert min(distance(original, other) for other in others) > MATCH_BITS
    found = nearest(fingerprint(_crop_reencode(_photo(name))),
                    [(name, original)] + [(f"other{i}", f) for i, f in enumerate(others)])
    assert [m.key for m in found] == [name]


def test_clusters_group_reposts_only():
    pictures = [(f"{name}/{edit.__name__}", fingerprint(edit(_photo(name))))
                for name in ("yaoming.jpg", "grace_hopper.jpg") for edit in (_crop_reencode, _mirror_text)]
    pictures.append(("astronaut.png/original", fingerprint(_photo("astronaut.png"))))
    assert clusters(pictures) == [["grace_hopper.jpg/_crop_reencode", "grace_hopper.jpg/_mirror_text"],
                                  ["yaoming.jpg/_crop_reencode", "yaoming.jpg/_mirror_text"]]


def test_a_flat_picture_is_never_matched():
    grey = np.full((200, 200, 3), 128, np.uint8)
    assert not fingerprint(grey).usable
    assert nearest(fingerprint(grey), [("grey", fingerprint(grey))]) == []


def test_the_ladder_climbs_with_the_counts_and_names_its_evidence():
    config = LadderConfig()
    confirmed = [Evidence("confirmed_violations", f"s{i}", "yao", i, 100 + i) for i in range(3)]
    undeclared = [Evidence("undeclared_ai", "s9")]
    steps = [recommend({"confirmed_violations": n}, confirmed[:n], config) for n in range(4)]
    assert [s.action for s in steps] == ["none", "warn", "restrict_distribution", "suspend"]
    assert steps[3].rests_on == confirmed
    assert steps[3].reasons == ["3 confirmed violation(s) (findings a reviewer confirmed, and re-posts of them) in "
                                "the last 90 days (this rung: at least 3)"]
    warned = recommend({"undeclared_ai": 3, "impersonation": 1}, undeclared, config)
    assert warned.action == "warn" and warned.rests_on == undeclared
    # A platform's own ladder: one undeclared AI scan already restricts distribution.
    strict = LadderConfig(steps=[LadderStep(action="restrict_distribution", undeclared_ai=1)])
    assert recommend({"undeclared_ai": 1}, undeclared, strict).action == "restrict_distribution"
    assert recommend({"confirmed_violations": 5}, confirmed, strict).action == "none"
