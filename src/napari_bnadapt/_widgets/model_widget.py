"""Model dock widget: choose a model file (or a bundled model), see what it is, pick a device."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from ..device import available_devices
from ..errors import UntrustedCodeError
from ..model.bn_layers import batchnorm_modules
from ..model.checkpoint import BUNDLED, DEMO_NAME, DEMO_PATH, load_model
from ..model.description import describe, strokes_text
from ..model.loaded import LoadedModel
from .help import NEXT_STEP, explain, wrapping
from .layout import Section, lay_out, scroll_in_place
from .messages import Feedback, confirm
from .session import live_statistics, session_for
from .workers import JobRunner, Rule, one_step, stop_on_close

if TYPE_CHECKING:
    import napari

MODEL_FILTER = "*.pt *.pth *.ts *.torchscript *.zip *.yaml"
SECTIONS = (Section(None, ("live", "path", "load_button", "bundled", "demo_button", "device")),)
_ROW = re.compile(r"^(\s*)([^:]{1,24}):\s+(.*)$")


class ModelWidget(Container):
    """Load a native or TorchScript model; the bundled demo model is loaded at start."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.viewer = viewer
        self.session = session_for(viewer)
        self.live = wrapping(Label(value=""))
        self.path = FileEdit(
            mode="r", filter=MODEL_FILTER, value=str(DEMO_PATH), label="model file"
        )
        self.load_button = PushButton(text="Load model")
        self.bundled = ComboBox(label="bundled", choices=list(BUNDLED), value=DEMO_NAME)
        self.demo_button = PushButton(text="Use the bundled model")
        self.device = ComboBox(label="device", choices=["auto", *available_devices()])
        self.summary = wrapping(Label(value="no model loaded"))
        self.feedback = Feedback(viewer)
        self._loaded_message: str | None = None
        self.runner = JobRunner(self.button_rules(), None, self.feedback)
        lay_out(self, "Model", SECTIONS, [self.summary, self.feedback.label], fill=self.summary)
        # Its own scroll area, taking the dock's spare height: a packaged model's
        # description and attribution ran past the bottom of a 1366×768 screen.
        scroll_in_place(self, self.summary)
        self.load_button.changed.connect(self.load)
        self.demo_button.changed.connect(self.load_demo)
        self.path.changed.connect(self.runner.update_buttons)
        self.device.changed.connect(self._device_changed)
        self.session.model_changed.connect(self._show)
        self.session.adapted_changed.connect(self._adapted_changed)
        stop_on_close(self.native, self.runner)
        explain(self, "Model")
        if self.session.model is None:
            self.session.set_model(load_model("demo"))
        else:
            self._show(self.session.model)
        self.runner.update_buttons()
        self._say_loaded()

    def button_rules(self) -> dict[Any, Rule]:
        """What each button needs besides an idle widget."""
        return {
            self.load_button: lambda: Path(str(self.path.value or "")).exists(),
            self.demo_button: lambda: self.bundled.value is not None,
        }

    def load(self, *_: object) -> None:
        """Load the chosen file in a worker; the current model stays until it succeeds.

        A bioimage.io package whose network is Python code in the package is loaded only
        after the user confirms that they trust it (importing it runs that code).
        """
        path = str(self.path.value)
        self.runner.start(one_step(load_or_ask, path), self._loaded, "loading model")

    def _loaded(self, result: LoadedModel | NeedsTrust) -> None:
        if not isinstance(result, NeedsTrust):
            self.use(result)
            return
        question = f"{result.message}\n\nRun the code of {result.path} and load the model?"
        if not confirm(self.native, "Run code from this package?", question):
            self.feedback.say("info", "Not loaded: the package's code was not run.")
            return
        job = one_step(load_model, result.path, None, True)
        self.runner.start(job, self.use, "loading model (trusted code)")

    def load_demo(self, *_: object) -> None:
        """Load the bundled model chosen (the synthetic demo, or the FIB-SEM membranes)."""
        name = str(self.bundled.value)
        self.path.value = str(BUNDLED[name])
        self.runner.start(one_step(load_model, name), self.use, f"loading {name}")

    def use(self, model: LoadedModel) -> None:
        """Make ``model`` the session's and say what it is and what to do next."""
        self.session.set_model(model)
        self._say_loaded()

    def _say_loaded(self) -> None:
        """Say what the session segments with now (the adapted copy when there is one)."""
        current = self.session.current
        self._loaded_message = _loaded_text(current)
        self.feedback.say("info", self._loaded_message, _next_for(current))

    def _adapted_changed(self, _: object) -> None:
        """Show the new state; a load message still on screen is said again for it (after a
        reset it spoke of strokes and statistics the session no longer has)."""
        self._show(self.session.model)
        if self.feedback.text.startswith(self._loaded_message or "\0"):
            self._say_loaded()

    def _device_changed(self, value: str) -> None:
        self.session.device = value
        self.feedback.say("info", f"Jobs now run on {value}.")

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
                    f"\nadapted copy: to {record.target} ({record.mode}, {record.patches} patches)"
                )
            strokes = strokes_text(self.session.adapted)
            if strokes is not None:
                text += f"\nstrokes:        {strokes}"
        self.summary.value = summary_table(text)


def summary_table(text: str) -> str:
    """``key:   value`` lines as a two-column table: long values wrap inside their column
    instead of back to the first one (indented keys are sub-items of the row above)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None and rows:
            rows[-1][1] += " " + line.strip()
            continue
        indent, key, value = match.groups() if match else ("", "", line)
        rows.append([("&nbsp;&nbsp;" if indent else "") + html.escape(key), html.escape(value)])
    cells = "".join(
        f'<tr><td style="white-space: nowrap; padding-right: 8px">{key}</td><td>{value}</td></tr>'
        for key, value in rows
    )
    return f'<table cellspacing="0" cellpadding="0">{cells}</table>'


def _loaded_text(model: LoadedModel | None) -> str:
    if model is None:
        return "No model loaded."
    voxel = (
        f", trained at {' × '.join(f'{v:g}' for v in model.voxel_size)} nm"
        if model.voxel_size
        else ""
    )
    count = len(batchnorm_modules(model.module))
    strokes = (
        f" It keeps the strokes it was taught with ({model.strokes.describe()}): Paint "
        "corrections brings them back over that target."
        if model.strokes is not None
        else ""
    )
    return f"Using {model.name}: {model.dims}D, {count} BatchNorm layers to adapt{voxel}.{strokes}"


def _next_for(model: LoadedModel | None) -> str | None:
    if model is None:
        return None
    if not batchnorm_modules(model.module):
        return NEXT_STEP["no batchnorm"]
    return NEXT_STEP["model loaded"]


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
