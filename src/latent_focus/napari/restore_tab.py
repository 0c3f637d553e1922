"""The panel's Restore tab: the method's options, the planes to restore, and the buttons that restore them.

Pair methods restore plane B with C, or each plane of a range with its blurrier neighbour; single-plane methods
the plane the viewer shows, or a range. Results are new layers placed at their source planes' z.
"""

from __future__ import annotations

from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ..errors import InputError
from ..focus import parse_planes
from ..methods import PAIR
from . import layers as L
from .method_form import form_params, params_form


def _single(gen):
    """A one-result method generator as a generator returning a one-element list."""
    return [(yield from gen)]


class RestoreTab(QWidget):
    """The method's form, the range of planes, the Restore buttons, a note on the last result, and the section."""

    def __init__(self, panel, parent=None):
        super().__init__(parent)
        self.panel = panel
        self.form = None
        self.form_holder = QVBoxLayout()
        self.range_edit = QLineEdit()
        self.range_edit.setPlaceholderText("all planes, or e.g. 0-3,5")
        self.one_button = QPushButton()
        self.many_button = QPushButton("Deblur range")
        self.many_button.setToolTip("restore the planes of the range (each with its blurrier neighbour for pair "
                                    "methods) into a new layer")
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.section_holder = QVBoxLayout()
        rows = QFormLayout()
        rows.addRow("Range", self.range_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.one_button)
        buttons.addWidget(self.many_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form_holder)
        layout.addLayout(rows)
        layout.addLayout(buttons)
        layout.addWidget(self.note_label)
        layout.addLayout(self.section_holder)
        layout.addStretch(1)
        self.one_button.clicked.connect(self.restore_one)
        self.many_button.clicked.connect(self.restore_selected)

    def set_params(self, params) -> None:
        """Show a form for ``params`` (the method's fields, set to its values)."""
        while self.form_holder.count():
            widget = self.form_holder.takeAt(0).widget()
            if widget is not None:  # out of sight at once; Qt deletes it when the event loop is back
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        self.form = params_form(params)
        self.form_holder.addWidget(self.form.native)

    def params(self, base):
        """``base`` with the form's values (:class:`InputError` for a value the method refuses)."""
        return form_params(self.form, base)

    def update_for(self, pair: bool, enabled: bool) -> None:
        self.one_button.setText("Deblur B with C" if pair else "Deblur this plane")
        self.one_button.setToolTip("restore plane B with plane C into a new layer" if pair else
                                   "restore the plane the viewer shows into a new layer")
        for button in (self.one_button, self.many_button):
            button.setEnabled(enabled)

    def set_section(self, section: QWidget | None) -> None:
        if section is not None:
            self.section_holder.addWidget(section)

    # -- restoring -------------------------------------------------------------------------------
    def restore_one(self) -> None:
        """Pair methods: deblur B with C; single-plane methods: the plane the viewer shows."""
        if self.panel.method_class.input == PAIR:
            sharp, blurry = self.panel.planes()
            if sharp == blurry:
                self.panel.set_status("choose two different planes B and C", error=True)
                return
            self._restore([sharp], partner=blurry)
        else:
            self._restore([self.panel.current_plane()])

    def restore_selected(self) -> None:
        """Restore the planes typed in the range field (every plane when it is empty)."""
        stack = self.panel.stack(copy=False)
        if stack is None:
            return
        try:
            planes = parse_planes(self.range_edit.text(), stack.n_planes)
        except InputError as exc:
            self.panel.report(exc)
            return
        self._restore(planes)

    def _restore(self, planes: list[int], partner: int | None = None) -> None:
        panel = self.panel
        layer, stack = panel.layer(), panel.stack()
        if layer is None or stack is None:
            return
        axes, channel = panel.axes(layer), panel.channel()

        def start(method):
            try:
                params = self.params(method.default_params())
            except InputError as exc:
                panel.report(exc)
                return
            if partner is not None:
                job = _single(method.restore(stack, planes[0], params, partner=partner))
            else:
                job = method.restore_planes(stack, planes, params)

            def done(results):
                data, place = L.placed(layer, panel.viewer, axes, channel, planes, [r.image for r in results])
                infos = [r.info for r in results]
                notes = [i["end_of_stack"] for i in infos if "end_of_stack" in i]
                rules = sorted({i.get("rule", "") for i in infos if i.get("rule")})
                meta = {"source": layer.name, "channel": channel, "planes": planes, "method": method.name,
                        "parameters": params.as_dict(), "per_plane": infos, L.PLUGIN_OUTPUT: True}
                name = L.unique_name(panel.viewer, f"{layer.name} {method.name}")
                panel.viewer.add_image(data, name=name, metadata=meta, **place, **L.display_template(layer))
                self.note_label.setText("\n".join(notes + ([f"rule: {rules[0]}"] if len(rules) == 1 else [])))

            what = (f"{method.name}: plane {planes[0]} with {partner}" if partner is not None
                    else f"{method.name}: {len(planes)} plane{'s' * (len(planes) != 1)} of {layer.name}")
            panel.run_job(job, done, what)

        panel.with_method(start)
