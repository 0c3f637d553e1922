"""napari plugin: reader, writer, sample data and the Latent focus panel.

Importing this package imports neither Qt nor napari; the widget modules do, when napari loads them.
"""
