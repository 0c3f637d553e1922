import numpy as np
import pytest
import tifffile

from latent_focus import InputError, Normalizer, read_stack, write_tiff
from latent_focus.io import check_axes, read_channels

# how plain tifffile.imwrite(path, array) stores an array of 3 or 4 planes: colour samples of one image
AS_SAMPLES = {"photometric": "rgb", "planarconfig": "separate"}


def test_tiff_roundtrip_keeps_units_and_dtype(tmp_path):
    data = (np.arange(3 * 16 * 20, dtype=np.uint16).reshape(3, 16, 20) * 7)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    stack = read_stack(path)
    assert stack.data.shape == (3, 16, 20)
    assert stack.data.dtype == np.float32
    assert stack.dtype == np.uint16
    assert np.array_equal(stack.data, data.astype(np.float32))


def test_zcyx_requires_channel_choice(tmp_path):
    data = np.random.default_rng(0).random((4, 2, 16, 16)).astype(np.float32)
    path = tmp_path / "zc.tif"
    tifffile.imwrite(path, data, metadata={"axes": "ZCYX"})
    with pytest.raises(InputError, match="channel"):
        read_stack(path)
    stack = read_stack(path, channel=1)
    assert np.allclose(stack.data, data[:, 1])
    with pytest.raises(InputError, match="channel 5"):
        read_stack(path, channel=5)


def test_a_channel_of_a_file_without_channels_is_refused(tmp_path):
    data = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    tifffile.imwrite(tmp_path / "zyx.tif", data, photometric="minisblack")
    with pytest.raises(InputError, match="zyx.tif has no channel axis; leave --channel out"):
        read_stack(tmp_path / "zyx.tif", channel=1)
    assert np.array_equal(read_stack(tmp_path / "zyx.tif", channel=0).data, data)  # its one channel
    tifffile.imwrite(tmp_path / "one.tif", data[:, None], metadata={"axes": "ZCYX"})
    with pytest.raises(InputError, match="channel 3 does not exist in one.tif; pass --channel 0"):
        read_stack(tmp_path / "one.tif", channel=3)
    for z in range(3):
        tifffile.imwrite(tmp_path / f"plane_z{z:02d}.tif", data[z])
    with pytest.raises(InputError, match="no channel axis"):
        read_stack(tmp_path, channel=1, field="plane")


@pytest.mark.parametrize("n", [3, 4])
def test_axes_reads_a_stack_that_tifffile_stored_as_colour_samples(tmp_path, n):
    data = np.random.default_rng(0).random((n, 16, 16)).astype(np.float32)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, **AS_SAMPLES)
    with pytest.raises(InputError, match=f"{n} channels.*--channel 0..{n - 1}.*z planes, pass --axes zyx"):
        read_stack(path)
    stack = read_stack(path, axes="zyx")
    assert stack.n_planes == n and np.array_equal(stack.data, data)
    assert np.array_equal(read_stack(path, channel=1).data, data[1:2])  # or one of them as a colour channel
    assert [s.n_planes for s in read_channels(path, axes="zyx")] == [n]
    assert len(read_channels(path)) == n


def test_axes_name_every_dimension_of_the_file(tmp_path):
    data = np.random.default_rng(0).random((3, 2, 16, 16)).astype(np.float32)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, photometric="minisblack")  # tifffile cannot tell which axis is which
    with pytest.raises(InputError, match="--axes"):
        read_stack(path)
    assert np.array_equal(read_stack(path, channel=1, axes="zcyx").data, data[:, 1])
    assert np.array_equal(read_stack(path, channel=2, axes="czyx").data, data[2])
    assert [s.n_planes for s in read_channels(path, axes="czyx")] == [2, 2, 2]
    with pytest.raises(InputError, match=r"s.tif has 4 dimensions \(shape \(3, 2, 16, 16\)\); --axes zyx names 3"):
        read_stack(path, axes="zyx")
    for bad in ("zqyx", "zzyx", "zc", ""):
        with pytest.raises(InputError, match="--axes takes one letter per dimension"):
            check_axes(bad)
    assert check_axes(" ZcYx ") == "ZCYX"


def test_ome_tiff_spacing(tmp_path):
    data = np.random.default_rng(0).random((5, 16, 16)).astype(np.float32)
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeZ": 0.5})
    stack = read_stack(path)
    assert stack.pixel_size_um == pytest.approx(0.2)
    assert np.allclose(stack.z_um, [0, 0.5, 1.0, 1.5, 2.0])


def test_imagej_spacing(tmp_path):
    data = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    stack = read_stack(path)
    assert np.allclose(stack.z_um, [0, 2, 4, 6])
    assert stack.pixel_size_um == pytest.approx(0.25)


def test_folder_with_z_subfolders(tmp_path):
    planes = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    for z in (0, 1, 2):
        (tmp_path / f"z{z}").mkdir()
        tifffile.imwrite(tmp_path / f"z{z}" / "a01_s1_w1.tif", planes[z])
        tifffile.imwrite(tmp_path / f"z{z}" / "a01_s2_w1.tif", planes[z] * 2)
    with pytest.raises(InputError, match="--field"):
        read_stack(tmp_path)
    stack = read_stack(tmp_path, field="a01_s2")
    assert np.allclose(stack.data, planes * 2)


def test_folder_with_z_in_names(tmp_path):
    planes = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    for z in (2, 0, 10):  # numeric, not lexical, order
        tifffile.imwrite(tmp_path / f"mcf_a01_s1_w1_z{z:02d}.tif", planes[[2, 0, 10].index(z)] + z)
    stack = read_stack(tmp_path)
    assert [round(float(p.mean() - q.mean())) for p, q in zip(stack.data, planes[[1, 0, 2]])] == [0, 2, 10]


@pytest.mark.real_data
def test_real_brightfield_stack(shared_data):
    stack = read_stack(shared_data / "brightfield_hela_set1" / "stack.tif")
    assert stack.data.shape == (6, 1024, 1344)
    assert stack.z_um is not None and len(stack.z_um) == 6


def test_normalizer_inverse_is_exact():
    x = np.random.default_rng(0).normal(500, 100, (64, 64)).astype(np.float32)
    n = Normalizer.from_data(x)
    assert np.allclose(n.denormalize(n.normalize(x)), x, rtol=1e-5, atol=1e-3)
    assert 0.0 <= np.percentile(n.normalize(x), 50) <= 1.0


@pytest.mark.parametrize("content, match", [
    (b"not a tiff at all", "cannot read"),
    (b"II*\x00\x08\x00\x00\x00\xff\xff", "cannot read"),
])
def test_corrupt_files_give_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_stack(path)


@pytest.mark.parametrize("kind", [{"imagej": True}, {"ome": True}])
def test_a_truncated_stack_is_refused_not_read_as_its_first_plane(tmp_path, kind):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.random.default_rng(0).random((6, 64, 64)).astype(np.float32), **kind)
    (tmp_path / "cut.tif").write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.tif is damaged or truncated .*; pass an intact TIFF file"):
        read_stack(tmp_path / "cut.tif")
    with pytest.raises(InputError, match="damaged or truncated"):
        read_channels(tmp_path / "cut.tif")


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_stack(tmp_path / "missing.tif")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="not a TIFF"):
        read_stack(tmp_path / "x.png")
    nan = np.ones((2, 16, 16), np.float32)
    nan[0, 0, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan, photometric="minisblack")
    with pytest.raises(InputError, match="NaN"):
        read_stack(tmp_path / "nan.tif")
    tifffile.imwrite(tmp_path / "tiny.tif", np.ones((2, 4, 4), np.float32), photometric="minisblack")
    with pytest.raises(InputError, match="at least 8x8"):
        read_stack(tmp_path / "tiny.tif")
    with pytest.raises(InputError, match="constant"):
        Normalizer.from_data(np.ones((16, 16)))


def test_write_tiff_never_overwrites(tmp_path):
    path = tmp_path / "out.tif"
    write_tiff(path, np.zeros((8, 8)))
    with pytest.raises(InputError, match="already exists"):
        write_tiff(path, np.ones((8, 8)))
    assert tifffile.imread(path).max() == 0
    write_tiff(path, np.ones((8, 8)), overwrite=True)
    assert tifffile.imread(path).dtype == np.float32
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind
