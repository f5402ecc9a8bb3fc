"""Array plumbing shared by inference, adaptation and training: axes, intensities, tiles, overlap."""
