"""Analyses of ELF fields: accuracy and residuals, critical points, networking value,
metal-sublattice templates, pictures. Every function takes Fields (any grid, any source)."""
