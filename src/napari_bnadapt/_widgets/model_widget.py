"""Model dock widget: choose a model file (or the bundled demo), see what it is, pick a device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from ..device import available_devices
from ..errors import UntrustedCodeError
from ..model.checkpoint import BUNDLED, DEMO_NAME, DEMO_PATH, load_model
from ..model.description import describe
from ..model.loaded import LoadedModel
from .help import add_purpose, explain, wrapping
from .messages import confirm, notify
from .session import live_statistics, session_for
from .workers import JobRunner, one_step, stop_on_close

if TYPE_CHECKING:
    import napari

MODEL_FILTER = "*.pt *.pth *.ts *.torchscript *.zip *.yaml"


class ModelWidget(Container):
    """Load a native or TorchScript model; the bundled demo model is loaded at start."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.viewer = viewer
        self.session = session_for(viewer)
        self.path = FileEdit(mode="r", filter=MODEL_FILTER, value=str(DEMO_PATH), label="model")
        self.load_button = PushButton(text="Load model")
        self.bundled = ComboBox(label="bundled", choices=list(BUNDLED), value=DEMO_NAME)
        self.demo_button = PushButton(text="Use the bundled model")
        self.device = ComboBox(label="device", choices=["auto", *available_devices()])
        self.live = Label(value="")
        self.summary = wrapping(Label(value="no model loaded"))
        self.summary.native.setStyleSheet("font-family: monospace")
        self.runner = JobRunner([self.load_button, self.demo_button])
        self.extend(
            [
                self.live,
                Label(
                    value="Model file (.pt, TorchScript, or a bioimage.io package: .zip or rdf.yaml)"
                ),
                self.path,
                self.load_button,
                Container(widgets=[self.bundled, self.demo_button], layout="horizontal"),
                Container(widgets=[self.device], layout="horizontal"),
                self.summary,
            ]
        )
        self.load_button.changed.connect(self.load)
        self.demo_button.changed.connect(self.load_demo)
        self.device.changed.connect(self._device_changed)
        self.session.model_changed.connect(self._show)
        self.session.adapted_changed.connect(lambda _: self._show(self.session.model))
        stop_on_close(self.native, self.runner)
        add_purpose(self, "Model")
        explain(self, "Model")
        if self.session.model is None:
            self.session.set_model(load_model("demo"))
        else:
            self._show(self.session.model)

    def load(self, *_: object) -> None:
        """Load the chosen file in a worker; the current model stays until it succeeds.

        A bioimage.io package whose network is Python code in the package is loaded only
        after the user confirms that they trust it (importing it runs that code).
        """
        path = str(self.path.value)
        self.runner.start(one_step(load_or_ask, path), self._loaded, "loading model")

    def _loaded(self, result: LoadedModel | NeedsTrust) -> None:
        if not isinstance(result, NeedsTrust):
            self.session.set_model(result)
            return
        question = f"{result.message}\n\nRun the code of {result.path} and load the model?"
        if not confirm(self.native, "Run code from this package?", question):
            notify("info", "not loaded: the package's code was not run")
            return
        job = one_step(load_model, result.path, None, True)
        self.runner.start(job, self.session.set_model, "loading model (trusted code)")

    def load_demo(self, *_: object) -> None:
        """Load the bundled model chosen (the synthetic demo, or the FIB-SEM membranes)."""
        name = str(self.bundled.value)
        self.path.value = str(BUNDLED[name])
        self.runner.start(one_step(load_model, name), self.session.set_model, f"loading {name}")

    def _device_changed(self, value: str) -> None:
        self.session.device = value

    def _show(self, model: LoadedModel | None) -> None:
        self.live.value = live_statistics(self.session)
        if model is None:
            self.summary.value = "no model loaded"
            return
        text = describe(model).to_text(layers=False)
        if self.session.adapted is not None:
            record = self.session.adapted.adaptation
            if record is not None:
                text += (
                    f"\nAdapted copy: to {record.target} ({record.mode}, {record.patches} patches)"
                )
        self.summary.value = text


@dataclass(frozen=True)
class NeedsTrust:
    """A package that runs code when loaded, and what the refusal said."""

    path: str
    message: str


def load_or_ask(path: str) -> LoadedModel | NeedsTrust:
    """Load ``path`` without running its code; a package that needs its code to be run
    comes back as :class:`NeedsTrust` for the user to decide."""
    try:
        return load_model(path)
    except UntrustedCodeError as exc:
        return NeedsTrust(path, str(exc))
