import pytest

from engine.files.scene import SceneError, load_scene, shipped_scenes


def test_minimal_scene_defaults(scene_file, tiny_gan):
    s = load_scene(scene_file("seed = 3\n"))
    assert s.model == tiny_gan.resolve()
    assert s.seed == 3 and s.path_kind == "keyframes" and s.seconds_per_key == 4.0
    assert s.name == "scene"


def test_full_scene(scene_file):
    s = load_scene(
        scene_file(
            'name = "X"\n[path]\nkind = "noise"\nseconds_per_key = 2.0\nperiod = 4.0\n'
            '[params]\ntruncation = 0.7\nspeed = { default = 0.5, min = 0.0, max = 2.0 }\n"latent/3" = -1.0\n'
        )
    )
    assert s.path_kind == "noise" and s.path_settings == {"period": 4.0}
    assert s.params["speed"].default == 0.5 and s.params["speed"].hi == 2.0
    assert s.params["latent/3"].default == -1.0
    assert s.params["truncation"].lo == 0.0  # hard range kept when only a default is given


def test_model_resolved_against_repo_root_too(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('model = "pyproject.toml"\n')  # not next to the scene, but at the repo root
    assert load_scene(p).model.name == "pyproject.toml"


# -- malformed values: one SceneError naming file and key, never a traceback ----------

HUGE = "9" * 400  # a TOML integer no float holds (float() overflows past 1.8e308)

_MALFORMED = [
    ("seed = 1e400", "'seed'", "an integer"),  # TOML reads it as inf
    (f"seed = {HUGE}", "'seed'", "an integer from 0 to"),
    ("seed = -1", "'seed'", "an integer from 0 to"),  # numpy's note sampler refuses negative seeds
    ("seed = nan", "'seed'", "an integer"),
    ('seed = "7"', "'seed'", "an integer"),
    ("seed = { value = 7 }", "'seed'", "an integer"),
    (f"[path]\nseconds_per_key = {HUGE}", "'path.seconds_per_key'", "a finite number"),
    ("[path]\nseconds_per_key = 1e400", "'path.seconds_per_key'", "a finite number"),
    ("[path]\nseconds_per_key = -inf", "'path.seconds_per_key'", "a finite number"),
    ("[path]\nseconds_per_key = nan", "'path.seconds_per_key'", "a finite number"),
    ("[path]\nseconds_per_key = true", "'path.seconds_per_key'", "a finite number"),
    ("[path]\nseconds_per_key = [1, 2]", "'path.seconds_per_key'", "a finite number"),
    (f"[path]\nbeats_per_key = {HUGE}", "'path.beats_per_key'", "a finite number"),
    (f"[path]\nbars_per_loop = -{HUGE}", "'path.bars_per_loop'", "a finite number"),
    (f"[path]\nkeys = {HUGE}", "'path.keys'", "an integer from 2 to 256"),
    ("[path]\nkeys = 8.0", "'path.keys'", "an integer"),
    ("[path]\nkeys = inf", "'path.keys'", "an integer"),
    ("[path]\nkeys = false", "'path.keys'", "an integer"),
    (f'[path]\nkind = "noise"\nperiod = {HUGE}', "'path.period'", "a finite number"),
    ('[path]\nkind = "noise"\nperiod = nan', "'path.period'", "a finite number"),
    ('[path]\nkind = "walk"\nsmoothness = 1e999', "'path.smoothness'", "a finite number"),
    ('[path]\ninterp = ["slerp"]', "'path.interp'", "a string"),
    ("[path]\nkind = { a = 1 }", "'path.kind'", "one of keyframes, noise, pictures, walk"),
    ("path = 3", "'path'", "a table"),
    (f"[params]\nspeed = {HUGE}", "'params.speed'", "a finite number"),
    (f"[params]\nspeed = {{ default = {HUGE} }}", "'params.speed.default'", "a finite number"),
    (f"[params]\nspeed = {{ min = -{HUGE} }}", "'params.speed.min'", "a finite number"),
    ("[params]\nspeed = { max = inf }", "'params.speed.max'", "a finite number"),
    ("[params]\ntruncation = true", "'params.truncation'", "a finite number"),
    ('[params]\ntruncation = "0.5"', "'params.truncation'", "a finite number"),
    ("[params]\ntruncation = { default = { deeper = 1 } }", "'params.truncation.default'", "a finite number"),
    ("params = [1]", "'params'", "a table"),
    ("name = 3", "'name'", "a string"),
    (f"[synth]\ncutoff = {HUGE}", "'synth.cutoff'", "a finite number"),
    ("[synth]\ncutoff = nan", "'synth.cutoff'", "a finite number"),
    ("[synth]\nwaveform = [1]", "'synth.waveform'", "a finite number"),
    ("synth = 1", "'synth'", "a [synth] table"),
]


@pytest.mark.parametrize(
    "body, key, expected",
    [
        ("sede = 1\n", "'sede'", "one of the scene keys"),
        ("seed = 1.5\n", "'seed'", "an integer"),
        ("seed = true\n", "'seed'", "an integer"),
        ('[path]\nkind = "spiral"\n', "'path.kind'", "one of keyframes, noise, pictures, walk"),
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
    ]
    + _MALFORMED,
)
def test_bad_scenes_name_file_key_and_expectation(scene_file, body, key, expected):
    f = scene_file(body)
    with pytest.raises(SceneError) as e:
        load_scene(f)
    msg = str(e.value)
    assert str(f) in msg and key in msg and expected in msg, msg
    assert "\n" not in msg and "9" * 100 not in msg, msg  # one line, however long the value


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
        (
            "[path]\nseconds_per_key = 2\nbeats_per_key = 1\n",
            ["path.seconds_per_key", "path.beats_per_key"],
            "expected only one",
        ),
        (
            "[path]\nbeats_per_key = 1\nbars_per_loop = 2\n",
            ["path.beats_per_key", "path.bars_per_loop"],
            "expected only one",
        ),
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


@pytest.mark.parametrize("value", [HUGE, "nan", "inf", "true", '"hot"', "{ a = 1 }"])
def test_malformed_notes_values_name_file_and_key(seq_scene, value):
    f = seq_scene(notes=f"temperature = {value}\n")
    with pytest.raises(SceneError) as e:
        load_scene(f)
    msg = str(e.value)
    assert str(f) in msg and "'notes.temperature'" in msg and "a finite number" in msg and "\n" not in msg, msg


def test_malformed_notes_table_and_text_values(seq_scene, scene_file):
    with pytest.raises(SceneError, match=r"key 'notes\.low': expected a finite number"):
        load_scene(seq_scene(notes=f"low = -{HUGE}\n"))
    with pytest.raises(SceneError, match=r"key 'notes\.scale': expected one of"):
        load_scene(seq_scene(notes="scale = 3.5\n"))
    with pytest.raises(SceneError, match=r"key 'text\.colour': expected a finite number"):
        load_scene(seq_scene("colour = [1.0, nan, 0.0]\n"))
    with pytest.raises(SceneError, match=r"key 'notes': expected a \[notes\] table"):
        load_scene(scene_file("notes = 5\n"))


def test_integer_past_the_toml_digit_limit_is_not_valid_toml(scene_file):
    """tomllib raises ValueError (int()'s 4300-digit limit), not TOMLDecodeError."""
    f = scene_file("seed = " + "9" * 5000 + "\n")
    with pytest.raises(SceneError, match="not valid TOML") as e:
        load_scene(f)
    assert str(f) in str(e.value) and len(str(e.value)) < 400


@pytest.mark.parametrize(
    "raw",
    [
        b'name = "caf\xe9"\n',  # Latin-1, not UTF-8
        b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",  # nested deeper than the recursion limit
    ],
)
def test_files_tomllib_chokes_on_are_scene_errors(tmp_path, raw):
    f = tmp_path / "s.toml"
    f.write_bytes(raw)
    with pytest.raises(SceneError, match="not valid TOML"):
        load_scene(f)


def test_edge_values_that_are_fine(scene_file):
    s = load_scene(
        scene_file(
            "seed = -0\n[path]\nseconds_per_key = 2\n[params]\ntruncation = -0.0\n"
            "speed = { default = 1, min = 0, max = 4 }\n"
        )
    )
    assert s.seed == 0 and s.seconds_per_key == 2.0 and isinstance(s.seconds_per_key, float)
    t = s.params["truncation"].default
    assert t == 0.0 and str(t) == "0.0"  # -0.0 is read as 0.0: the status never shows "-0"
    assert s.params["speed"] == s.params["speed"].__class__(1.0, 0.0, 4.0)
    assert load_scene(scene_file(f"seed = {2**63 - 1}\n")).seed == 2**63 - 1
