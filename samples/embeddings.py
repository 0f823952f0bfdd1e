"""Seeded face-like embeddings for tests and benchmarks: clustered by identity, not uniform noise.

Real face embeddings sit in clusters (one per identity, several references each) on an anisotropic
unit sphere: a few directions carry most of the variance. Uniform random vectors would make every
index look either perfect or hopeless; clustered ones behave like a real gallery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceLikeEmbeddings:
    """Identity centres plus noisy, L2-normalised references drawn around them.

    ``noise`` is the per-reference noise norm relative to the unit centre: 0.8 gives a cosine of
    about 0.6 between two references of one identity, as for a mid-quality face model.
    ``spectrum`` is the power-law decay of the per-dimension scale of the centres (0 = isotropic).
    """

    dim: int = 512
    refs_per_identity: int = 5
    noise: float = 0.8
    spectrum: float = 0.35
    seed: int = 0

    def centres(self, n_identities: int, stream: int = 0) -> np.ndarray:
        """Identity centres on the unit sphere; ``stream`` picks an independent set (e.g. strangers)."""
        rng = np.random.default_rng([self.seed, stream])
        scale = (1.0 + np.arange(self.dim, dtype=np.float32)) ** -self.spectrum
        centres = rng.standard_normal((n_identities, self.dim), dtype=np.float32) * scale
        return _normalise(centres)

    def samples(self, centres: np.ndarray, per_centre: int, stream: int) -> np.ndarray:
        """``per_centre`` noisy L2-normalised samples of each centre, grouped by centre."""
        rng = np.random.default_rng([self.seed, stream])
        n = len(centres) * per_centre
        out = np.empty((n, self.dim), np.float32)
        step = 65_536
        for start in range(0, n, step):
            stop = min(start + step, n)
            noise = rng.standard_normal((stop - start, self.dim), dtype=np.float32)
            quality = rng.uniform(0.75, 1.25, (stop - start, 1)).astype(np.float32)
            noise *= self.noise * quality / np.sqrt(self.dim, dtype=np.float32)
            out[start:stop] = noise + centres[np.arange(start, stop) // per_centre]
        return _normalise(out)

    def gallery(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` references: (vectors, identity of each reference, identity centres)."""
        n_identities = -(-n // self.refs_per_identity)
        centres = self.centres(n_identities, stream=0)
        vectors = self.samples(centres, self.refs_per_identity, stream=1)[:n]
        identity = np.arange(n) // self.refs_per_identity
        return vectors, identity, centres

    def probes(self, centres: np.ndarray, n: int, stream: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh images of enrolled identities: (vectors, identity)."""
        rng = np.random.default_rng([self.seed, stream])
        identity = rng.integers(0, len(centres), n)
        return self.samples(centres[identity], 1, stream + 1), identity

    def strangers(self, n: int, stream: int = 4) -> np.ndarray:
        """``n`` images of people who are not enrolled."""
        return self.samples(self.centres(n, stream), 1, stream + 1)


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x
