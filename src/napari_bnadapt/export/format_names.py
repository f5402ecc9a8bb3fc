"""The formats a model can be exported to (no network library imported: the command
line's help lists them)."""

EXPORT_FORMATS = ("bioimageio", "torchscript")
