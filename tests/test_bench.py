import pytest
import torch

from engine.bench.frames import bench_scene, format_rows

KEYS = {"scene", "size", "device", "forward_ms", "frame_ms", "overhead_ms", "ratio"}


def test_bench_scene_reports_the_documented_fields(scene_file):
    row = bench_scene(scene_file('name = "tiny"\n'), torch.device("cpu"), frames=5, warmup=2)
    assert KEYS <= set(row)
    assert row["scene"] == "tiny" and row["size"] == 64 and row["device"] == "cpu"
    assert row["forward_ms"] > 0 and row["frame_ms"] > 0
    assert abs(row["overhead_ms"] - (row["frame_ms"] - row["forward_ms"])) < 1e-2
    assert "tiny" in format_rows([row])


def test_bench_reports_melody_and_text_cost_for_scenes_that_have_them(seq_scene):
    row = bench_scene(seq_scene(), torch.device("cpu"), frames=30, warmup=2)
    assert row["seq_ms"] is not None and 0.0 <= row["seq_ms"] <= row["seq_p99_ms"]
    assert "notes+text" in format_rows([row])


def test_bench_models_rows_forward_and_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.bench import models
    from engine.models.gan_arch import preset_config

    tiny = [("tiny classic", preset_config("classic", "live", size=64, channels=16, latent_dim=8))]
    tiny += [("tiny fast", preset_config("fast", "live", size=64, channels=16, latent_dim=8))]
    monkeypatch.setattr(models, "_configs", lambda: tiny)
    rows = models.bench_models(threads=(1,), frames=5, warmup=1)
    assert [r["model"] for r in rows] == ["tiny classic", "tiny fast"]
    for r in rows:
        assert r["precision"] == "fp32" and r["fp16_psnr_db"] is None and r["size"] == 64
        assert 0 < r["forward_ms"] and 0 < r["frame_ms"] and r["fps"] > 0
    table = models.format_models(rows)
    assert "tiny fast" in table and "frame" in table


def test_bench_train_rows() -> None:
    from engine.bench import train

    tiny = {"size": 64, "latent_dim": 8, "channels": 16, "min_channels": 8}
    rows = train.bench_train(torch.device("cpu"), steps=3, warmup=1, configs=(("tiny fast", "fast", "live"),), **tiny)
    precisions = ("fp32", "bf16") if train.bf16_is_native(torch.device("cpu")) else ("fp32",)
    assert [(r["model"], r["precision"]) for r in rows] == [("tiny fast", p) for p in precisions]
    for r in rows:
        assert r["size"] == 64 and r["batch"] == 8 and 0 < r["step_ms"] <= r["step_p90_ms"]
        assert r["images_per_s"] == pytest.approx(8000.0 / r["step_ms"], rel=0.01)
    assert rows[0]["speedup"] == 1.0
    assert "tiny fast" in train.format_train(rows)
    assert "not timed" in train.format_train(rows[:1])
