
import pytest

from engine.files.scene import SceneError, load_scene, shipped_scenes


def test_minimal_scene_defaults(scene_file, tiny_gan):
    s = load_scene(scene_file("seed = 3\n"))
    assert s.model == tiny_gan.resolve()
    assert s.seed == 3 and s.path_kind == "keyframes" and s.seconds_per_key == 4.0
    assert s.name == "scene"


def test_full_scene(scene_file):
    s = load_scene(scene_file(
        'name = "X"\n[path]\nkind = "noise"\nseconds_per_key = 2.0\nperiod = 4.0\n'
        '[params]\ntruncation = 0.7\nspeed = { default = 0.5, min = 0.0, max = 2.0 }\n"latent/3" = -1.0\n'
    ))
    assert s.path_kind == "noise" and s.path_settings == {"period": 4.0}
    assert s.params["speed"].default == 0.5 and s.params["speed"].hi == 2.0
    assert s.params["latent/3"].default == -1.0
    assert s.params["truncation"].lo == 0.0  # hard range kept when only a default is given


def test_model_resolved_against_repo_root_too(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('model = "pyproject.toml"\n')  # not next to the scene, but at the repo root
    assert load_scene(p).model.name == "pyproject.toml"


@pytest.mark.parametrize(
    "body, key, expected",
    [
        ("sede = 1\n", "'sede'", "one of the scene keys"),
        ("seed = 1.5\n", "'seed'", "an integer"),
        ("seed = true\n", "'seed'", "an integer"),
        ('[path]\nkind = "spiral"\n', "'path.kind'", "one of keyframes, noise, walk"),
        ("[path]\nseconds_per_key = 0\n", "'path.seconds_per_key'", "between 0.05 and 3600"),
        ("[path]\nkeys = 1000\n", "'path.keys'", "from 2 to 256"),
        ('[path]\nkeys = "8"\n', "'path.keys'", "an integer"),
        ("[path]\nperiod = 3.0\n", "'path.period'", "settings of path kind 'keyframes'"),
        ("[params]\nbrightness = 0.5\n", "'params.brightness'", "a deck param"),
        ("[params]\ntruncation = 5.0\n", "'params.truncation'", "a default from 0.0 to 2.0"),
        ("[params]\nspeed = { default = 1.0, max = 9.0 }\n", "'params.speed'", "a range inside 0.0..4.0"),
        ("[params]\nspeed = { deflt = 1.0 }\n", "'params.speed.deflt'", "only default, min, max"),
        ('[params]\n"latent/9" = 1.0\n', "'params.latent/9'", "a deck param"),
        ("[params]\nspeed = nan\n", "'params.speed'", "a finite number"),
    ],
)
def test_bad_scenes_name_file_key_and_expectation(scene_file, body, key, expected):
    f = scene_file(body)
    with pytest.raises(SceneError) as e:
        load_scene(f)
    msg = str(e.value)
    assert str(f) in msg and key in msg and expected in msg, msg


def test_missing_model(scene_file):
    f = scene_file(model="nowhere/missing.safetensors")
    with pytest.raises(SceneError, match=r"key 'model': expected an existing model file .*missing.safetensors"):
        load_scene(f)


def test_model_key_missing(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("seed = 1\n")
    with pytest.raises(SceneError, match="'model'.*missing"):
        load_scene(f)


def test_malformed_toml(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text('model = "x\nseed = \n')
    with pytest.raises(SceneError, match="broken.toml: not valid TOML"):
        load_scene(f)


def test_unreadable_file(tmp_path):
    with pytest.raises(SceneError, match="cannot read scene file"):
        load_scene(tmp_path / "absent.toml")


def test_every_shipped_scene_is_valid():
    files = shipped_scenes()
    assert len(files) >= 2 and files[0].name == "default.toml"
    for f in files:
        s = load_scene(f)
        assert s.model.suffix == ".safetensors"


def test_path_speed_in_beats_and_bars(scene_file):
    s = load_scene(scene_file("[path]\nbeats_per_key = 2\n"))
    assert s.beats_per_key == 2.0
    assert load_scene(scene_file("[path]\nkeys = 4\nbars_per_loop = 2\n")).beats_per_key == 2.0  # 8 beats / 4 keys
    assert load_scene(scene_file('[path]\nkind = "noise"\nperiod = 16.0\nbars_per_loop = 8\n')).beats_per_key == 2.0
    assert load_scene(scene_file("[path]\nseconds_per_key = 2\n")).beats_per_key is None


@pytest.mark.parametrize(
    "body, keys, expected",
    [
        ("[path]\nseconds_per_key = 2\nbeats_per_key = 1\n", ["path.seconds_per_key", "path.beats_per_key"],
         "expected only one"),
        ("[path]\nbeats_per_key = 1\nbars_per_loop = 2\n", ["path.beats_per_key", "path.bars_per_loop"],
         "expected only one"),
        ("[path]\nbeats_per_key = 0\n", ["'path.beats_per_key'"], "beats between 0.0625 and 4096"),
        ('[path]\nbeats_per_key = "2"\n', ["'path.beats_per_key'"], "a finite number"),
        ("[path]\nbars_per_loop = 0.1\n", ["'path.bars_per_loop'"], "bars between 0.25 and 4096"),
        ('[path]\nkind = "walk"\nbars_per_loop = 2\n', ["'path.bars_per_loop'"], "a path kind that loops"),
    ],
)
def test_bad_beat_settings_name_file_and_keys(scene_file, body, keys, expected):
    f = scene_file(body)
    with pytest.raises(SceneError) as e:
        load_scene(f)
    msg = str(e.value)
    assert str(f) in msg and all(k in msg for k in keys) and expected in msg, msg
