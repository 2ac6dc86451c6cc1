"""The normalised source catalogue: its schema (schema.py) and the product writers
(CSV, VOTable, JSON, DS9 regions, PNG preview)."""
