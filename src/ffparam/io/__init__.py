"""File formats shared by several boxes (torsion-scan imports) and checked reading of
user-supplied files."""
