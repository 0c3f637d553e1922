"""The README is tested as written: its napari menu paths exist in napari's real menus."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _menu_paths(viewer) -> set[str]:
    paths = set()

    def walk(menu, path):
        for action in menu.actions():
            text = action.text().replace("&", "")
            if action.menu():
                walk(action.menu(), path + [text])
            elif text:
                paths.add(" › ".join(path + [text]))

    for action in viewer.window._qt_window.menuBar().actions():
        if action.menu():
            walk(action.menu(), [action.text().replace("&", "")])
    return paths


def test_readme_menu_paths_are_napari_menus(make_napari_viewer):
    named = set(re.findall(r"\*\*((?:File|Plugins|Layers|View|Window) › [^*]+)\*\*", README.read_text()))
    assert len(named) >= 3, "the README names the menu entries it uses"
    missing = named - _menu_paths(make_napari_viewer())
    assert not missing, missing
