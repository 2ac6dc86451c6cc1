"""The job runner: `python -m caesar_faas.runner` fetches the input, runs a source finder, writes
and uploads the products and reports status events (ARCHITECTURE §6, contract.py)."""
