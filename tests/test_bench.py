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
