"""The plugin's reader, writer and sample data, through npe2 and a real napari viewer."""

import numpy as np
import pytest
import tifffile
from napari.utils.notifications import notification_manager

from latent_focus.errors import InputError
from latent_focus.napari.reader import get_reader
from latent_focus.napari.writer import write_image

PLUGIN = "napari-latent-focus"


@pytest.fixture
def stack():
    return np.random.default_rng(1).random((4, 32, 40), dtype=np.float32) * 1000


def test_manifest_is_valid():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()
    assert manifest.display_name == "Latent Focus"
    assert [s.display_name for s in manifest.contributions.sample_data] == ["Defocus z-stack (nuclei)"]
    assert {w.display_name for w in manifest.contributions.widgets} == {"Latent focus", "Training"}


def test_round_trip_through_the_viewer(make_napari_viewer, tmp_path, stack):
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="stack")
    path = tmp_path / "saved.tif"
    assert viewer.layers.save(str(path), plugin=PLUGIN) == [str(path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.tif"]  # no temporary file left behind
    layer = viewer.open(path)[0]  # napari's own reader, chosen without asking
    assert layer.data.dtype == np.float32
    np.testing.assert_array_equal(layer.data, stack)


def test_napari_resolves_tiffs_to_its_own_reader_and_folders_to_the_plugin(tmp_path, stack):
    """No "Choose reader" dialog for TIFF files: the plugin claims only folders of per-plane TIFFs."""
    from napari.plugins._npe2 import get_readers

    tifffile.imwrite(tmp_path / "plane.tif", stack[0])
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    for name in ("plane.tif", "stack.tif"):
        assert PLUGIN not in get_readers(str(tmp_path / name)), name
    folder = tmp_path / "planes"
    for z in range(3):
        (folder / f"z{z}").mkdir(parents=True)
        tifffile.imwrite(folder / f"z{z}" / "field_a.tif", stack[z])
    assert PLUGIN in get_readers(str(folder))


def test_read_layers_gives_each_channel_its_own_layer(tmp_path, stack):
    from latent_focus.napari.reader import read_layers

    path = tmp_path / "two.tif"
    zcyx = np.stack([stack, 2 * stack], axis=1).astype(np.uint16)
    tifffile.imwrite(path, zcyx, imagej=True, metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "um"})
    layers = read_layers(path)
    assert [kw["name"] for _, kw, _ in layers] == ["two [channel 0]", "two [channel 1]"]
    np.testing.assert_array_equal(layers[1][0], zcyx[:, 1].astype(np.float32))
    assert all(kw["scale"][0] == pytest.approx(0.5) for _, kw, _ in layers)


def test_view_axes_read_three_planes_stored_as_colour_samples_as_one_z_stack(tmp_path, stack):
    from latent_focus.napari.reader import read_layers

    path = tmp_path / "three.tif"
    tifffile.imwrite(path, stack[:3].astype(np.uint16), photometric="rgb", planarconfig="separate")
    assert len(read_layers(path)) == 3  # without --axes: three one-plane channels
    (data, kwargs, _), = read_layers(path, axes="ZYX")
    assert data.shape == (3, 32, 40) and kwargs["axis_labels"] == ("z", "y", "x")


def test_writer_replaces_a_file_atomically(tmp_path, stack):
    path = tmp_path / "out.tiff"
    path.write_bytes(b"old")
    assert write_image(str(path), stack[0].astype(np.uint16), {}) == [str(path)]
    data = tifffile.imread(path)
    assert data.dtype == np.float32 and data.shape == (32, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tiff"]


def test_writer_keeps_how_a_result_was_made(tmp_path, stack):
    from latent_focus.io import read_provenance

    path = tmp_path / "result.tif"
    meta = {"name": "nuclei latent", "metadata": {"method": "latent", "planes": [2, 5], "model": "default",
                                                 "latent_focus_output": True}}
    write_image(str(path), stack, meta)
    info = read_provenance(path)
    assert info["method"] == "latent" and info["planes"] == [2, 5] and info["layer"] == "nuclei latent"
    assert info["software"].startswith("napari-latent-focus")


def test_writer_refuses_what_is_not_a_plane_or_stack(tmp_path, stack):
    with pytest.raises(InputError, match="dimensions"):
        write_image(str(tmp_path / "a.tif"), stack[None], {})
    with pytest.raises(InputError, match="RGB"):
        write_image(str(tmp_path / "b.tif"), np.zeros((8, 8, 3)), {"rgb": True})


def test_reader_declines_files_and_other_folders(tmp_path, stack):
    for name in ("image.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"not a stack")
        assert get_reader(str(tmp_path / name)) is None
    assert get_reader(str(tmp_path)) is None  # a folder without TIFF planes
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    assert get_reader(str(tmp_path / "stack.tif")) is None  # files are napari's own reader's


def test_reader_z_spacing_and_pixel_size(tmp_path, stack):
    from latent_focus.napari.reader import read_layers

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack.astype(np.uint16), imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    data, kwargs, kind = read_layers(path)[0]
    assert kind == "image" and data.shape == (4, 32, 40)
    assert kwargs["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert kwargs["metadata"]["z_um"] == [0.0, 2.0, 4.0, 6.0]


def test_reader_folder_of_planes(tmp_path, stack):
    for z in range(3):
        (tmp_path / f"z{z}").mkdir()
        tifffile.imwrite(tmp_path / f"z{z}" / "field_a.tif", stack[z].astype(np.uint16))
    data, kwargs, _ = get_reader(str(tmp_path))(str(tmp_path))[0]
    np.testing.assert_array_equal(data, stack[:3].astype(np.uint16).astype(np.float32))


def test_corrupt_plane_in_a_folder_gives_a_notification(make_napari_viewer, tmp_path, stack):
    for z in range(2):
        (tmp_path / f"z{z}").mkdir()
        tifffile.imwrite(tmp_path / f"z{z}" / "field_a.tif", stack[z])
    (tmp_path / "z1" / "field_a.tif").write_bytes(b"II*\x00" + b"\xff" * 64)
    viewer = make_napari_viewer()
    before = len(notification_manager.records)
    assert viewer.open(tmp_path, plugin=PLUGIN) == []
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("field_a.tif" in m for m in messages)
    assert len(viewer.layers) == 0
