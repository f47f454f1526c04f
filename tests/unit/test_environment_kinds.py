"""The environment kinds' pure parts: dpkg parsing, the vendoring plan, R DESCRIPTION
files, the Dockerfile steps, and the registry itself (no Docker, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studypack.environment import debian, kinds, rlang
from studypack.environment.detect import PythonEnvironment
from studypack.environment.dockerfile import DockerfileInputs, render_dockerfile

DIGEST = "sha256:" + "ab" * 32
QUERY = "\n".join([
    "jq\t1.6-2.1\tamd64\tinstall ok installed\t\tlibjq1 (= 1.6-2.1), libc6 (>= 2.34)\t",
    "libjq1\t1.6-2.1\tamd64\tinstall ok installed\t\tlibonig5 (>= 6.8.1), libc6:any\t",
    "libonig5\t6.9.8-1\tamd64\tinstall ok installed\t\tlibc6 (>= 2.14)\t",
    "libc6\t2.36-9\tamd64\tinstall ok installed\t\tlibgcc-s1\t",
    "libgcc-s1\t12.2.0\tamd64\tinstall ok installed\t\tgcc-12-base | gcc-base\t",
    "gcc-12-base\t12.2.0\tamd64\tinstall ok installed\t\t\tgcc-base",
    "gone\t1.0\tamd64\tdeinstall ok config-files\t\t\t",
    "locales\t2.36-9\tall\tinstall ok installed\t\tlibc6\t",
])


def test_dpkg_query_output_is_parsed_with_alternatives_and_only_installed_packages():
    installed = debian.parse_dpkg_query(QUERY)
    assert "gone" not in installed
    assert installed["jq"].depends == [["libjq1"], ["libc6"]]
    assert installed["libgcc-s1"].depends == [["gcc-12-base", "gcc-base"]]
    assert installed["gcc-12-base"].provides == ["gcc-base"]


def test_the_closure_follows_dependencies_and_says_who_needed_what():
    installed = debian.parse_dpkg_query(QUERY)
    chosen = debian.dependency_closure({"jq": "used by the run"}, installed)
    assert set(chosen) == {"jq", "libjq1", "libonig5", "libc6", "libgcc-s1", "gcc-12-base"}
    assert chosen["libonig5"] == "needed by libjq1"


def test_the_plan_keeps_what_the_base_has_and_skips_configuration_only_packages():
    installed = debian.parse_dpkg_query(QUERY)
    base = debian.parse_dpkg_query(QUERY.replace("libc6\t2.36-9\t", "libc6\t2.36-10\t"))
    for name in ("jq", "libjq1", "libonig5"):
        base.pop(name)
    used = [{"name": "jq", "version": "1.6-2.1", "files": ["/usr/bin/jq"]},
            {"name": "locales", "version": "2.36-9", "files": ["/etc/locale.alias"]}]
    lock = debian.plan_debian_packages(used, installed=installed, base=base)
    status = {p.name: p.status for p in lock.packages}
    assert status == {"jq": "", "libjq1": "", "libonig5": "",  # to vendor
                      "libc6": "base has another version", "libgcc-s1": "in base image",
                      "gcc-12-base": "in base image", "locales": "not vendored"}
    assert "only read its configuration" in next(
        p.reason for p in lock.packages if p.name == "locales")
    lines = "\n".join(lock.summary())
    assert "came with the base image at the same version: 2" in lines
    assert "base image has at another version, kept as the base has them: 1" in lines
    assert "libc6" not in lines   # one line per category: each package only in details
    assert ("Debian package base has another version: libc6=2.36-9 (the base image has "
            "2.36-10; the run used 2.36-9)") in lock.details()


def test_the_debian_summary_counts_each_category_and_groups_reasons():
    def package(name, status, reason="", source=""):
        return debian.DebPackage(name, "1.0", "amd64", "used by the run", status=status,
                                 reason=reason, source=source)

    lock = debian.DebianLock(
        [package(f"lib{i}", "not vendored", "no base image was pinned, so there is no "
                 "Dockerfile") for i in range(190)]
        + [package("locales", "not vendored",
                   "the run only read its configuration (/etc/locale.alias), which is in "
                   "the traced files"),
           package("tzdata", "not vendored", "the run only read its configuration "
                   "(/etc/timezone), which is in the traced files"),
           package("jq", "vendored", source="mirror"),
           package("oniguruma", "vendored", source="rebuilt"),
           package("libc6", "in base image")])
    assert lock.summary() == [
        "Debian packages vendored: 2 (.deb with sha256; 1 rebuilt from the installed files "
        "by dpkg-repack)",
        "Debian packages that came with the base image at the same version: 1",
        "Debian packages not vendored: 190 (no base image was pinned, so there is no "
        "Dockerfile)",
        "Debian packages not vendored: 2 (the run only read their configuration, which is "
        "in the traced files)",
        "195 Debian package(s) in all, each listed in studypack.json and "
        "debian-packages.lock (create -v prints them)"]
    assert len(lock.details()) == 195
    assert "Debian package vendored: jq=1.0 (mirror)" in lock.details()


def test_no_kind_is_named_outside_its_class():
    """Issue #16: the behaviour of each kind lives in its class, not in branches."""
    import re
    from pathlib import Path

    core = Path(kinds.__file__).parents[1]
    branch = re.compile(r"""(kind|\.name)\s*(==|!=|in|not in)\s*\(?["'](conda|venv|system|"""
                        r"""debian|r)["']""")
    found = [f"{path.relative_to(core)}:{number}"
             for path in core.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if branch.search(line)]
    assert found == []
    assert kinds.PYTHON_KINDS == ("conda", "venv", "system")
    assert [k.name for k in kinds.KINDS if k.plans_wheels] == ["venv", "system"]


def test_deb_files_are_named_the_debian_way():
    assert debian.deb_file_name("libjpeg62-turbo", "1:2.1.5-2", "amd64") == \
        "libjpeg62-turbo_1%3a2.1.5-2_amd64.deb"


def test_the_dockerfile_installs_vendored_debs_offline_after_checking_their_hashes():
    lock = debian.DebianLock([debian.DebPackage("jq", "1.6", "amd64", "used by the run",
                                                status="vendored", file="debs/jq_1.6_amd64.deb")])
    steps = debian.install_steps(lock)
    text = "\n".join(steps)
    assert "COPY env/debs/ /env/debs/" in text
    assert "sha256sum -c --quiet SHA256SUMS" in text
    assert "apt-get install" in text and "--no-remove" in text
    assert debian.install_steps(debian.DebianLock()) == []


def test_a_study_with_nothing_to_pip_install_has_no_wheelhouse_copy():
    steps = kinds.pip_install_steps("requirements.lock", has_wheels=False)
    text = render_dockerfile(DockerfileInputs(base_image=f"r/p@{DIGEST}", study_name="s",
                                              install_steps=steps))
    assert "wheelhouse" not in text
    assert "RUN python3 -m venv /env/venv" in text
    bare = render_dockerfile(DockerfileInputs(base_image=f"r/p@{DIGEST}", study_name="s"))
    assert "Nothing to install" in bare


def test_r_description_and_installed_package_folders(tmp_path: Path):
    pkg = tmp_path / "lib" / "tinystat"
    (pkg / "Meta").mkdir(parents=True)
    (pkg / "Meta" / "package.rds").write_bytes(b"x")
    (pkg / "R").mkdir()
    (pkg / "R" / "tinystat.rdb").write_bytes(b"x")
    (pkg / "DESCRIPTION").write_text("Package: tinystat\nVersion: 0.1.0\nDescription: a\n"
                                     "  long text\nRepository: CRAN\n")
    fields = rlang.read_description(pkg / "DESCRIPTION")
    assert fields["Version"] == "0.1.0" and fields["Description"] == "a\nlong text"
    assert rlang.package_folder(pkg / "R" / "tinystat.rdb") == pkg
    assert rlang.package_folder(tmp_path / "elsewhere.txt") is None
    lock = rlang.lock_r_packages([pkg / "R" / "tinystat.rdb"])
    assert [(p.name, p.version, p.origin) for p in lock.packages] == \
        [("tinystat", "0.1.0", "CRAN")]
    rlang.vendor_r_packages(lock, tmp_path / "env")
    assert (tmp_path / "env" / "r-library" / "tinystat" / "DESCRIPTION").is_file()
    assert "tinystat\t0.1.0\tCRAN" in (tmp_path / "env" / "r-packages.lock").read_text()
    assert rlang.install_steps(lock) == [
        "# R packages from a local library, vendored as their installed folders.",
        "COPY env/r-library/ /usr/local/lib/R/site-library/"]


def test_r_is_detected_from_the_program_or_a_pipeline():
    assert rlang.uses_r(["/usr/bin/Rscript"], [])
    assert rlang.uses_r(["/usr/bin/make"], [Path("/usr/lib/R/bin/exec/R")])
    assert not rlang.uses_r(["/usr/bin/python3"], [Path("/usr/lib/libc.so.6")])
    # a Python run that only opened libR.so (no R package loaded): no R line
    assert not rlang.uses_r(["/usr/bin/python3"], [Path("/usr/lib/R/lib/libR.so")])


def test_the_registry_is_ordered_and_each_kind_says_why_it_does_not_apply():
    assert [k.name for k in kinds.KINDS] == ["debian", "conda", "venv", "system", "r"]
    venv = PythonEnvironment(kind="venv", executable="/s/.venv/bin/python",
                             prefix=Path("/s/.venv"), python_version="3.11.2")
    facts = kinds.StudyFacts(executables=["/s/.venv/bin/python"], packages=[], files=[],
                             python=venv)
    chosen, why_not = kinds.applicable(facts)
    assert [k.name for k in chosen] == ["venv"]
    assert "virtualenv" in why_not["conda"]
    assert why_not["r"] == "the run did not start R"
    assert why_not["debian"]   # no packages (or no dpkg here): a reason, never silence
    no_python = kinds.StudyFacts(executables=["/usr/bin/Rscript"], python=None)
    assert kinds.kind_named("venv").applies(no_python) == "the run did not use Python"


@pytest.mark.parametrize("suite,python", [("bookworm", "3.11"), ("trixie", "3.13")])
def test_each_debian_release_brings_its_python(suite, python):
    from studypack.environment import baseimage

    assert baseimage.suite_for_python(python) == suite
    assert baseimage.base_image_ref(suite) == f"127.0.0.1:5000/studypack/debian-python:{suite}"


def test_the_preview_of_an_r_study_has_an_r_section_before_the_run(tmp_path):
    from studypack.environment import preview_environment
    from studypack.spec import parse_spec

    spec = parse_spec({"study": {"name": "r", "title": "R"},
                       "run": {"command": ["Rscript", "analysis.R"]}})
    spec.path = tmp_path / "studypack.toml"
    preview = preview_environment(spec)
    r = preview.section("r")
    assert r is not None and r.lock_name == "r-packages.lock"
    assert r.lines[0].startswith("# R ")
    assert "conda" in preview.not_applying
    if debian.dpkg_available():
        assert "known after the traced run" in "\n".join(preview.section("debian").lines)


def test_the_wizards_environment_view_shows_the_r_section(tmp_path):
    from studypack.spec import parse_spec
    from studypack_gui import backend

    spec = parse_spec({"study": {"name": "r", "title": "R"},
                       "run": {"command": ["Rscript", "analysis.R"]}})
    spec.path = tmp_path / "studypack.toml"
    view = backend.detect_environment(spec)
    r = next(s for s in view.sections if s.kind == "r")   # its own tab on the page
    assert (r.title, r.lock_name, r.absent) == (
        "R and the R packages the run loaded", "r-packages.lock", "")
    assert r.lines[0].startswith("# R ")
    assert view.lock_name.startswith("requirements.lock")   # the Python's, from its kind
