"""Running a network fast on this machine: precision, memory layout, folded BatchNorm,
the halo its tiles need, measured once and cached (see docs/scale.md)."""
