"""TextStream: characters at the asked rate, deterministic, primed, wrapped into lines."""

from __future__ import annotations

import numpy as np
import pytest

from engine.seq.text import MAX_BURST, MAX_PENDING, TextStream, TextStreamParams, sample_index, wrap_line
from tests.test_text_model import VOCAB, tiny_model

FPS = 60


def _run(stream: TextStream, seconds: float, fps: int = FPS) -> str:
    return "".join(stream.advance(1.0 / fps) for _ in range(round(seconds * fps)))


def test_rate_in_characters_per_second() -> None:
    stream = TextStream(tiny_model(), TextStreamParams(rate=20.0))
    per_frame = [len(stream.advance(1.0 / FPS)) for _ in range(3 * FPS)]
    assert sum(per_frame) in (59, 60)  # 3 s at 20 chars/s (the float sum of 1/60 may fall short by one)
    assert max(per_frame) == 1 and per_frame.count(1) in (59, 60)  # spread out, never bunched
    assert stream.emitted == sum(per_frame)
    stream.params.rate = 0.0
    assert _run(stream, 1.0) == ""
    stream.params.rate = 90.0
    assert len(_run(stream, 1.0, fps=30)) == 90  # 3 per frame
    assert stream.advance(0.0) == "" and stream.advance(-1.0) == "" and stream.advance(float("nan")) == ""


def test_a_stall_does_not_burst() -> None:
    stream = TextStream(tiny_model(), TextStreamParams(rate=100.0))
    assert len(stream.advance(5.0)) == MAX_BURST  # 500 owed; the backlog is dropped
    assert len(stream.advance(0.01)) == 1


def test_deterministic_for_seed_and_dt_sequence() -> None:
    model = tiny_model()
    dts = np.random.default_rng(0).uniform(0.005, 0.05, 400)
    runs = []
    for seed in (5, 5, 6):
        stream = TextStream(model, TextStreamParams(rate=40.0, seed=seed))
        runs.append("".join(stream.advance(dt) for dt in dts))
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert len(runs[0]) > 300 and set(runs[0]) <= set(VOCAB)
    stream = TextStream(model, TextStreamParams(rate=40.0, seed=6))
    _run(stream, 2.0)
    stream.reset()  # same seed again: the same text again
    assert "".join(stream.advance(dt) for dt in dts) == runs[2]
    stream.reset(seed=5)
    assert "".join(stream.advance(dt) for dt in dts) == runs[0]


def test_primer_with_unseen_characters() -> None:
    model = tiny_model()
    plain = TextStream(model, TextStreamParams(rate=50.0, seed=1))
    primed = TextStream(model, TextStreamParams(rate=50.0, seed=1), primer="Ünseen ☃ chärs\tZ")
    out = _run(primed, 2.0)
    assert out.startswith("Ünseen ☃ chärs\tZ")  # echoed as typed, then continued
    assert out[16:] != _run(plain, 2.0)[:84]  # the state was changed by the primer
    quiet = TextStream(model, TextStreamParams(rate=50.0, seed=1))
    quiet.prime("Tab cat", echo=False)
    assert not _run(quiet, 1.0).startswith("Tab")


def test_an_echoed_primer_is_fed_as_it_is_typed_with_the_same_result() -> None:
    model = tiny_model()
    primer = "to be or not to be"
    quiet = TextStream(model, TextStreamParams(rate=50.0, seed=3))
    quiet.prime(primer, echo=False)
    echoed = TextStream(model, TextStreamParams(rate=50.0, seed=3))
    steps = []
    real_step = echoed.kernel.step
    echoed.kernel.step = lambda idx, state: steps.append(idx) or real_step(idx, state)
    echoed.prime(primer)
    assert steps == []  # nothing on the calling frame: 256 steps at once cost ~30 ms
    assert echoed.advance(1.0 / 50.0) == "t" and len(steps) == 1  # one step per character typed
    out = echoed.advance((len(primer) - 1) / 50.0) + _run(echoed, 2.0)
    assert out.startswith(primer[1:])
    assert out[len(primer) - 1 :] == _run(quiet, 2.0)[: len(out) - len(primer) + 1]  # same state after it


def test_a_silent_primer_behind_an_echoed_one_is_fed_after_it() -> None:
    model = tiny_model()
    eager = TextStream(model, TextStreamParams(rate=50.0, seed=4))
    eager.prime("cat ", echo=False)
    eager.prime("hat", echo=False)
    lazy = TextStream(model, TextStreamParams(rate=50.0, seed=4))
    lazy.prime("cat ")
    lazy.prime("hat", echo=False)  # waits behind "cat ", as the state must read it in that order
    out = _run(lazy, 2.0)
    assert out.startswith("cat ") and out[4:] == _run(eager, 2.0)[: len(out) - 4]


def test_a_primer_flood_is_bounded_keeping_the_newest() -> None:
    stream = TextStream(tiny_model(), TextStreamParams(rate=20.0, seed=1))
    for i in range(20):
        stream.prime(f"{i:02d}" + "a" * 254)
    assert stream.primer_dropped == 20 * 256 - MAX_PENDING
    stream.params.rate = 1000.0
    typed = "".join(stream.advance(0.05) for _ in range(30))
    assert typed.startswith("16" + "a" * 254 + "17")  # the last four primers, whole


def test_lines_wrap_at_word_boundaries() -> None:
    stream = TextStream(tiny_model(), TextStreamParams(rate=200.0, line_length=12, seed=2))
    stream.prime("a few words that are here\nnext line\n\n\n\nlast", echo=True)
    stream.params.temperature = 0.0
    stream.advance(len("a few words that are here\nnext line\n\n\n\nlast") / 200.0 + 1e-9)
    lines = stream.take_lines()
    assert lines[:5] == ["a few words", "that are", "here", "next line", ""]  # one blank line kept
    assert stream.current_line == "last"
    _run(stream, 3.0)
    for line in stream.take_lines():
        assert len(line) <= 12 and line == line.strip()
    assert stream.take_lines() == []


def test_wrap_line() -> None:
    assert wrap_line("hello there world", 12) == ("hello there", "world")
    assert wrap_line("hello there! x", 12) == ("hello there!", "x")  # a word ends exactly at the limit
    assert wrap_line("abcdefghijklmnop", 5) == ("abcde", "fghijklmnop")  # one long word: cut
    assert wrap_line("ab  cdefgh", 4) == ("ab", "cdefgh")


def test_sampling_params() -> None:
    logits = np.array([0.0, 3.0, 1.0, 50.0], dtype=np.float32)  # last class is <unk>
    rng = np.random.default_rng(0)
    assert sample_index(logits, 0.0, 0, rng) == 1  # greedy, <unk> masked
    assert {sample_index(logits, 1.0, 1, rng) for _ in range(50)} == {1}
    assert {sample_index(logits, 5.0, 2, rng) for _ in range(200)} == {1, 2}
    assert {sample_index(logits, 100.0, 0, rng) for _ in range(300)} == {0, 1, 2}


def test_out_of_range_params_are_clamped() -> None:
    params = TextStreamParams(temperature=float("nan"), top_k=-3, rate=1e9, line_length=0)
    c = params.clamped()
    assert (c.temperature, c.top_k, c.rate, c.line_length) == (0.8, 0, 1000.0, 1)
    stream = TextStream(tiny_model(), params)
    assert len(stream.advance(0.01)) == 10


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.5])
def test_never_emits_unknown(temperature: float) -> None:
    stream = TextStream(tiny_model(seed=3), TextStreamParams(rate=100.0, temperature=temperature))
    assert "\ufffd" not in _run(stream, 2.0)
