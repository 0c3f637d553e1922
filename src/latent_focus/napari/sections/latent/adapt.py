"""Adapting the latent method's model to the chosen layer's stack, from the panel.

A short self-supervised fine-tune (:func:`latent_focus.methods.latent.adapt`): the stack's sharper planes teach
its blurrier ones, no in-focus reference needed. The new model is saved in the user's models folder under the
name given here, announced to the other widgets, and chosen in the panel.
"""

from __future__ import annotations

import re

from qtpy.QtWidgets import QFormLayout, QGroupBox, QLineEdit, QPushButton, QSpinBox

from ....errors import InputError
from ....methods.latent import ADAPT_MINUTES, adapt
from ....models import user_models_dir
from ....progress import Progress
from ...events import model_events

NAME_OK = re.compile(r"^[\w.\- ]+$")


def adapt_progress(gen):
    """Training reports of :func:`adapt` as the panel's progress reports."""
    try:
        for p in gen:
            yield Progress(p.done, max(p.total, 1), f"step {p.done} of {p.total}, loss {p.losses['total']:.3f}, "
                                                    f"{p.eta_s:.0f} s left")
    finally:
        gen.close()


def free_name(stem: str) -> str:
    """``<stem>-adapted`` made folder-safe, or ``-2``, ``-3``, ... whichever model folder does not exist yet."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "stack"
    name, k = f"{safe}-adapted", 2
    while (user_models_dir() / name).exists():
        name, k = f"{safe}-adapted-{k}", k + 1
    return name


class AdaptBox(QGroupBox):
    """Duration and name of the adapted model, and the button that starts the fine-tune."""

    def __init__(self, section, parent=None):
        super().__init__("Adapt the model to this stack", parent)
        self.section, self.context = section, section.context
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 30)
        self.minutes.setValue(round(ADAPT_MINUTES))
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("how long to fine-tune (the work stops after about this long)")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip(f"the adapted model's folder name under {user_models_dir()}")
        self.button = QPushButton("Adapt to this stack")
        self.button.setToolTip("fine-tune the chosen model on this layer's own planes (its sharper planes teach its "
                               "blurrier ones; no in-focus reference needed), save it as a user model and use it")
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addRow("Duration", self.minutes)
        layout.addRow("New model", self.name_edit)
        layout.addRow(self.button)
        self.button.clicked.connect(self.start)

    def source_changed(self) -> None:
        layer = self.context.layer()
        self.name_edit.setText(free_name(layer.name) if layer is not None else "")
        self.button.setEnabled(layer is not None and self.context.stack(copy=False).n_planes >= 3)

    def start(self) -> None:
        """Fine-tune the chosen model on the layer's stack, save it under the given name, then use it."""
        layer, stack = self.context.layer(), self.context.stack()
        if layer is None or stack is None:
            self.context.set_status("choose a z-stack layer to adapt to", error=True)
            return
        name = self.name_edit.text().strip()
        output = user_models_dir() / name
        if not NAME_OK.match(name) or name.strip(".") == "":
            self.context.report(InputError(f"model name {name!r} is not a valid folder name; use letters, digits, "
                                           "'-', '_' or '.'"))
            return
        if output.exists():
            self.context.report(InputError(f"a model named {name!r} exists already; choose another name"))
            return
        base = self.context.model() or "default"

        def done(_):
            model_events.changed.emit(str(output))  # re-lists the models here and in the training dock
            self.context.choose_model(f"user:{output.name}")
            self.name_edit.setText(free_name(layer.name))

        job = adapt_progress(adapt(stack, output, base, float(self.minutes.value()), device=self.context.device()))
        self.context.run_job(job, done, f"adapting {base} to {layer.name} (saved as user:{name})")
