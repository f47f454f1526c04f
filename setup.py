"""Package discovery (the rest of the configuration is in pyproject.toml): setuptools'
find over studypack/, and over ui/ for the GUI, which installs as ``studypack_gui``.
The GUI's data folders (icons/, freedesktop/) are found as namespace packages so that
their files ship as package data."""

from setuptools import find_namespace_packages, find_packages, setup

GUI = ["studypack_gui"] + [f"studypack_gui.{name}" for name in
                           find_namespace_packages("ui", exclude=["*__pycache__*"])]

setup(packages=find_packages(include=["studypack", "studypack.*"]) + GUI)
