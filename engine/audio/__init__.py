"""Sound: the built-in synth, the realtime playback path, audio analysis.

- ``synth``: the polyphonic synth (pure numpy); ``filter``: its block low-pass.
- ``ring``: the lock-free single-producer single-consumer ring of blocks.
- ``playback``: the stream callback that only copies, and the audio clock
  (perf_counter seconds -> synth samples); ``producer``: the render-ahead thread.
- ``devices``: which PortAudio device a flag means; the ``devices`` listing.
- ``wav``: WAV files, a fake stream and offline rendering (no sound card).
- ``analysis``: level / band / onset features (pure); ``capture``: --audio-in.
- ``bench``: synth cost and the real stream under a JACK dummy server;
  ``bench_rtmixer``: the same through python-rtmixer's C callback, for comparison.

The sounddevice output edge is engine.output.audio. Only ``devices``,
``capture`` and engine.output.audio import sounddevice, and only when called.
"""
