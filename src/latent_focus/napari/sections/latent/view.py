"""The latent method's Latent view tab: the latents of every plane on their two main axes, with linearity scores."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ....methods.latent import latent_view
from ...latent_plot import LatentPlot


class LatentViewTab(QWidget):
    """A Latent view button, the PCA plot of every plane's latent, and the LDS and APD scores."""

    def __init__(self, section, parent=None):
        super().__init__(parent)
        self.section, self.context = section, section.context
        self.view_button = QPushButton("Latent view")
        self.view_button.setToolTip("encode every plane (downsampled) and plot the latents on their two main axes")
        self.plot = LatentPlot()
        self.scores_label = QLabel()
        self.scores_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view_button)
        layout.addWidget(self.plot)
        layout.addWidget(self.scores_label)
        self.view_button.clicked.connect(self.show_latent_view)
        self.reset()

    def reset(self) -> None:
        self.plot.set_points(np.zeros((0, 2)), -1, (0.0, 0.0))
        self.scores_label.setText("Press Latent view to plot the latents of every plane and score their linearity "
                                  "(LDS: 1 when on a line; APD: 0 when evenly spaced).")

    def show_latent_view(self) -> None:
        """Project the latents of every plane on their two main axes and score their linearity."""
        layer, stack, method = self.context.layer(), self.context.stack(), self.section.method
        if layer is None or stack is None or method is None:
            return

        def done(view):
            self.plot.set_points(view.coords, view.focus, view.explained)
            self.plot.mark(self.context.planes())
            lines = [f"{side}: LDS {geo.lds:.3f}, APD {geo.apd:.3f}"
                     + (f" ({geo.apd_spaced:.3f} at the planes' z spacing)" if view.spaced else "")
                     for side, geo in view.scores.items()]
            lines = lines or ["too few planes on either side of focus to score"]
            self.scores_label.setText("\n".join([f"sharpest plane {view.focus}", *lines]))

        z = None if stack.z_um is None else stack.z_um.tolist()
        self.context.run_job(latent_view(method.engine, stack.data, z_um=z), done,
                             f"encoding the planes of {layer.name}")
