"""File formats shared by several boxes (torsion-scan imports)."""
