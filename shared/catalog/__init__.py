"""The model catalog (DESIGN §5); filled in by catalog.py."""
