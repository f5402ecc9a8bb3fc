"""Why adaptation works or not: latent distributions, distances, mask quality, a reading, reports."""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Diagnosis": ".diagnosis",
        "LatentCapture": ".latents",
        "LatentConfig": ".latent_config",
        "capture_latents": ".capture",
        "diagnose": ".diagnosis",
        "diagnose_steps": ".diagnosis",
    },
)
