"""Opening hours: the schedule file, and a show that rests in black while closed."""

import datetime as dt

import pytest
import torch

from engine.files.scene import load_scene
from engine.files.schedule import ScheduleError, load_schedule
from engine.stage.deck import load_scenes
from engine.stage.hours import OpeningHours
from tests.fakes import FakeOutput, built_show

NOON = dt.datetime(2026, 12, 4, 12, 0, 0)  # a Friday


def schedule_file(tmp_path, body):
    path = tmp_path / "hours.toml"
    path.write_text(body)
    return path


def test_weekly_overnight_dated_and_closed_hours(tmp_path):
    s = load_schedule(
        schedule_file(
            tmp_path,
            'fade_seconds = 2\n[[open]]\ndays = ["fri", "sat"]\nfrom = "22:00"\nto = "02:00"\n'
            '[[open]]\ndate = "2026-12-07"\nfrom = 10:00:00\nto = "11:30"\n[[closed]]\ndate = 2026-12-12\n',
        ),
        now=NOON,
    )
    at = dt.datetime
    assert s.fade_seconds == 2.0
    assert not s.is_open(at(2026, 12, 4, 21, 59)) and s.is_open(at(2026, 12, 4, 22, 0))
    assert s.is_open(at(2026, 12, 5, 1, 59)) and not s.is_open(at(2026, 12, 5, 2, 0))  # past midnight
    assert s.is_open(at(2026, 12, 6, 1, 0)) and not s.is_open(at(2026, 12, 6, 22, 30))  # Sat night on, Sun off
    assert s.is_open(at(2026, 12, 7, 10, 15)) and not s.is_open(at(2026, 12, 7, 11, 30))  # the dated opening
    assert not s.is_open(at(2026, 12, 12, 23, 0))  # a Saturday, but closed that date


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[[open]]\nfrom = "25:00"\nto = "18:00"\n', "open #1: key 'from': expected a time"),
        ('[[open]]\ndays = ["monday"]\nfrom = "10:00"\nto = "18:00"\n', "open #1: key 'days'"),
        ('[[open]]\ndays = ["mon"]\ndate = "2026-12-07"\nfrom = "10:00"\nto = "18:00"\n', "key 'date'"),
        ('[[open]]\nfrom = "10:00"\nto = "18:00"\nwhen = 1\n', "open #1: key 'when'"),
        ('[[closed]]\ndate = "yesterday"\n', "closed #1: key 'date'"),
        ('[[open]]\ndate = "2026-01-01"\nfrom = "10:00"\nto = "18:00"\n', "never open"),  # only in the past
        ("", "never open"),
        ('fade_seconds = -1\n[[open]]\nfrom = "10:00"\nto = "18:00"\n', "key 'fade_seconds'"),
    ],
)
def test_a_bad_or_impossible_schedule_is_one_error(tmp_path, body, words):
    path = schedule_file(tmp_path, body)
    with pytest.raises(ScheduleError) as err:
        load_schedule(path, now=NOON)
    assert str(path) in str(err.value) and words in str(err.value)


def test_open_from_now_plus_5_to_now_plus_15_s(tmp_path, scene_file):
    """Black, then the picture (faded in), then black, at those times; no model while closed."""
    s = load_schedule(
        schedule_file(tmp_path, 'fade_seconds = 1.0\n[[open]]\nfrom = "12:00:05"\nto = "12:00:15"\n'), now=NOON
    )
    scenes = load_scenes([load_scene(scene_file("[path]\nseconds_per_key = 1.0\n"))], torch.device("cpu"))
    out = FakeOutput()
    show = built_show(scenes, output=out, fps=10)
    show.hours = OpeningHours(s, now=lambda: NOON + dt.timedelta(seconds=show.frame_count / 10))
    forwards = []
    for _ in range(200):  # 20 s at 10 fps
        show.run(frames=1)
        forwards.append(show.deck_forwards[0])
    lit = [f.max() > 0 for f in out.frames]
    assert not any(lit[:50]) and forwards[49] == 0  # closed: black, and the model never ran
    assert lit[50] and out.frames[50].mean() < out.frames[62].mean()  # opens at 5 s, fading in over 1 s
    assert all(lit[50:151]) and not any(lit[161:])  # closes at 15 s, black after the 1 s fade
    assert 0 < out.frames[155].mean() < out.frames[149].mean()
    assert forwards[-1] == forwards[161] and 100 <= forwards[-1] <= 112  # the model ran only while lit
    assert show.hours.rested_frames >= 50 + 38
