"""PERSON / LOCATION / ORGANIZATION from GiNZA's named entities (Japanese NER).

``ja_ginza`` labels entities with Sekine's Extended Named Entity hierarchy (Person, City,
Company, ...). Presidio's SpacyRecognizer only needs the mapping below, given to the spaCy NLP
engine as ``model_to_presidio_entity_mapping``; unmapped labels (Date, Money, Product ...) are
ignored. 'Email', 'URL', 'Phone_Number' and 'ID_Number' are left to the pattern recognizers,
which validate them.
"""

from __future__ import annotations

from presidio_analyzer.predefined_recognizers import SpacyRecognizer

NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")

GINZA_LABEL_MAP: dict[str, str] = {
    "Person": "PERSON",
    # places a person can be located by
    "Country": "LOCATION",
    "Province": "LOCATION",
    "City": "LOCATION",
    "County": "LOCATION",
    "GPE_Other": "LOCATION",
    "Location_Other": "LOCATION",
    "Postal_Address": "LOCATION",
    "Domestic_Region": "LOCATION",
    "Region_Other": "LOCATION",
    "Station": "LOCATION",
    "Road": "LOCATION",
    # organizations (employers, schools)
    "Company": "ORGANIZATION",
    "Company_Group": "ORGANIZATION",
    "Corporation_Other": "ORGANIZATION",
    "Organization_Other": "ORGANIZATION",
    "School": "ORGANIZATION",
    "Public_Institution": "ORGANIZATION",
    "Government": "ORGANIZATION",
    "Political_Organization_Other": "ORGANIZATION",
    "International_Organization": "ORGANIZATION",
    "Research_Institute": "ORGANIZATION",
}


def ginza_recognizer() -> SpacyRecognizer:
    """Presidio's spaCy recognizer reading the mapped GiNZA entities for Japanese."""
    return SpacyRecognizer(supported_language="ja", supported_entities=list(NER_ENTITIES))
