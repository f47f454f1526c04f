"""The base image's package list, kept by digest (issue #17): the first ``create``
starts a container of the pinned base to list its Debian packages; a later one with the
same digest reads the list kept in the cache, and a name that can move is never kept."""

from __future__ import annotations

import pytest

from studypack.environment import debian


class _NoContainers:
    """An engine that refuses to start a container: whatever answers must come from
    the cache."""

    def run(self, *args, **kwargs):
        raise AssertionError("a container was started")


@pytest.mark.docker
def test_the_package_list_of_a_pinned_base_is_listed_once(tmp_path, monkeypatch,
                                                          docker_engine, base_image):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kept = tmp_path / "cache" / "studypack" / "base-images"
    pinned = docker_engine.client.images.get(base_image).id      # sha256:…
    assert pinned.startswith("sha256:")

    first, release = debian.base_image_packages(docker_engine, pinned)
    assert first and "libc6" in first and release.startswith("debian ")
    assert len(list(kept.glob("*.txt"))) == 1

    again, release_again = debian.base_image_packages(_NoContainers(), pinned)
    assert again == first and release_again == release

    # a tag can be moved to other files: listed every time, never kept
    by_tag, _ = debian.base_image_packages(docker_engine, base_image)
    assert by_tag == first and len(list(kept.glob("*.txt"))) == 1

    # a damaged entry is not trusted blindly: an empty one is listed again
    (entry,) = kept.glob("*.txt")
    entry.write_text("")
    assert debian.base_image_packages(docker_engine, pinned)[0] == first
    assert entry.read_text().partition("===\n")[2].strip()
