"""The napari form of a method's ``Params``, built by magicgui from the same fields as the command line options."""

from __future__ import annotations

import dataclasses

from magicgui.widgets import Container, create_widget

from ..errors import InputError
from ..methods.base import Params, check_value
from ..methods.options import describe


def _widget(f: dataclasses.Field, value):
    meta = f.metadata
    label = meta.get("label") or f.name.replace("_", " ")
    options = {"tooltip": describe(f)}
    if meta.get("choices") is not None:
        return create_widget(value=value, name=f.name, label=label, widget_type="ComboBox",
                             options={**options, "choices": list(meta["choices"])})
    if meta.get("parse") is None and type(f.default) in (int, float, bool):
        if type(f.default) is not bool:
            options.update(min=meta["min"] if meta.get("min") is not None else -1e9,
                           max=meta["max"] if meta.get("max") is not None else 1e9)
            if meta.get("step") is not None:
                options["step"] = meta["step"]
        return create_widget(value=value, annotation=type(f.default), name=f.name, label=label, options=options)
    text = "" if value in (None, ()) else (" ".join(map(str, value)) if isinstance(value, tuple) else str(value))
    widget = create_widget(value=text, annotation=str, name=f.name, label=label, options=options)
    widget.native.setPlaceholderText("auto")
    return widget


def params_form(params: Params) -> Container:
    """A magicgui container with one widget per field of ``params``, set to its values."""
    return Container(widgets=[_widget(f, getattr(params, f.name)) for f in params.specs()], labels=True)


def form_params(form: Container, base: Params) -> Params:
    """``base`` with the form's values (text fields parsed and every value checked; :class:`InputError`)."""
    values = {}
    for f in base.specs():
        value = form[f.name].value
        parse = f.metadata.get("parse")
        if parse is not None:
            text = str(value).strip()
            try:
                value = parse(text)
            except InputError:
                if text:
                    raise
                value = getattr(base, f.name)  # an empty field keeps the method's default
        elif type(f.default) is str and f.metadata.get("choices") is None:
            value = str(value)
        check_value(f, value)
        values[f.name] = value
    try:
        return base.replace(**values)
    except TypeError as exc:
        raise InputError(str(exc)) from None
