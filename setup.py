"""Package discovery (the rest of the configuration is in pyproject.toml): setuptools'
find over studypack/, and over ui/ for the GUI, which installs as ``studypack_gui``.
Folders of data (the example study, the GUI's icons/ and freedesktop/) are found as
namespace packages so that their files ship as package data (pyproject.toml)."""

from setuptools import find_namespace_packages, setup

SKIP = ["*__pycache__*", "*.egg-info", "*.examples.*"]   # an example study is data
CORE = find_namespace_packages(include=["studypack", "studypack.*"], exclude=SKIP)
GUI = ["studypack_gui"] + [f"studypack_gui.{name}"
                           for name in find_namespace_packages("ui", exclude=SKIP)]

# resources/examples installs as studypack.examples (package-dir in pyproject.toml)
setup(packages=CORE + ["studypack.examples"] + GUI)
