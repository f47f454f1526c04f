"""How a study is cited: author names as given and family names, related identifiers,
upload type and communities in studypack.toml, each refusal with its sentence."""

from __future__ import annotations

import pytest

from studypack.citation import identifier_is_known, license_problem, relation_of, split_name
from studypack.errors import SpecError
from studypack.spec import Author, parse_spec


def spec_with(**study):
    return parse_spec({"study": {"name": "s", "title": "T", **study},
                       "run": {"command": ["python", "run.py"]}})


@pytest.mark.parametrize("name,expected", [
    ("Lovelace, Ada", ("Lovelace", "Ada")),
    ("  van der Berg ,  Anna Maria ", ("van der Berg", "Anna Maria")),
    ("Ada Lovelace", None),               # Zenodo would make all of it the family name
    ("Lovelace, Ada, Countess", None),    # two commas: Zenodo does not split either
    ("Lovelace,", None),
    ("Plato", None),
])
def test_a_name_is_split_only_on_exactly_one_comma(name, expected):
    assert split_name(name) == expected


def test_authors_as_given_and_family_names_or_family_comma_given():
    spec = spec_with(authors=[{"given": "Ada", "family": "Lovelace"},
                              {"name": "Babbage, Charles"}, {"family": "Plato"},
                              {"name": "Grace Hopper"}])
    people = spec.study.authors
    assert [a.citation_name for a in people] == ["Lovelace, Ada", "Babbage, Charles", "Plato",
                                                  None]
    assert [a.display_name for a in people] == ["Ada Lovelace", "Charles Babbage", "Plato",
                                                 "Grace Hopper"]
    assert spec.study.unsplit_authors() == [Author(name="Grace Hopper")]
    [warning] = spec.study.name_warnings()
    assert warning == (
        "The author name 'Grace Hopper' does not say which part is the family name, so a "
        "citation would get it wrong. Write it as given = \"Grace\" and family = \"Hopper\" "
        "(or name = \"Hopper, Grace\") under its [[study.authors]] in studypack.toml (a person "
        "known by one name only gets family = \"…\" alone).")
    # and they are written back as they were given
    assert spec.to_dict()["study"]["authors"][0] == {"given": "Ada", "family": "Lovelace"}


@pytest.mark.parametrize("study,sentence", [
    ({"authors": [{"given": "Ada"}]},
     "`study.authors.given` 'Ada' has no family name beside it."),
    ({"authors": [{"orcid": "0000-0002-1825-0097"}]},
     "`study.authors` has an author without a name."),
    ({"related": [{"identifier": "10.1234/x", "relation": "supplements"}]},
     "`study.related.relation` 'supplements' is not a DataCite relation type."),
    ({"related": ["see the paper"]},
     "`study.related` 'see the paper' is neither a DOI nor a URL"),
    ({"communities": ["My Lab"]}, "`study.communities` 'My Lab' is not a Zenodo community id."),
    ({"upload_type": "publication"},
     "`study.upload_type` 'publication' is not a Zenodo upload type studypack can send."),
    ({"publication_date": "2023-02-30"},
     "`study.publication_date` '2023-02-30' is not a real date written YYYY-MM-DD."),
    ({"related": ["10.1234/x"], "related_identifiers": [{"identifier": "10.1234/y"}]},
     "`study.related_identifiers` cannot be used together with `related`."),
])
def test_citation_keys_are_checked_when_the_spec_is_read(study, sentence):
    with pytest.raises(SpecError) as err:
        spec_with(**study)
    assert sentence in str(err.value)


def test_related_upload_type_and_communities_are_read():
    spec = spec_with(related=["10.1234/journal.paper.42",
                              {"identifier": "https://example.org/x", "relation": "REFERENCES"}],
                     upload_type="software", communities=["my-lab"],
                     publication_date="2024-02-29")
    assert spec.study.related == [{"identifier": "10.1234/journal.paper.42"},
                                  {"identifier": "https://example.org/x",
                                   "relation": "references"}]
    assert (spec.study.upload_type, spec.study.communities) == ("software", ["my-lab"])
    # the older key still reads
    old = spec_with(related_identifiers=[{"identifier": "10.1234/journal.paper.42"}])
    assert old.study.related == [{"identifier": "10.1234/journal.paper.42"}]


def test_vocabularies():
    assert relation_of("issupplementto") == "isSupplementTo"
    assert relation_of("isSupplementOf") is None
    assert identifier_is_known("https://doi.org/10.5281/zenodo.7")
    assert identifier_is_known("arXiv:2101.00001") and not identifier_is_known("hello")
    assert license_problem("cc-by-4.0") is None and license_problem("MIT") is None
    assert "not an SPDX license id" in license_problem("Not-A-License")
    assert "license expression" in license_problem("MIT OR Apache-2.0")
    assert "license expression" in license_problem("GPL-3.0+")
