"""Workflows: thin layers that chain the boxes (bespoke force fields, fits, liquids)."""
