"""Output edges of the engine: where frames (and sound) leave the process.

- ``layout``: pure geometry shared by the live window and offline renders
  (``fit_rect`` for fit / fill / stretch, ``parse_size`` for ``WxH`` flags).
- ``video``: the live window, an SDL2 renderer that scales frames on the GPU
  (``VideoOutput``; ``headless=True`` runs the same code on SDL's dummy driver).
- ``record``: offline writers (H.264 MP4 via imageio-ffmpeg, PNG sequences)
  and ``compose`` to place a frame on an output canvas deterministically.

Nothing here is imported by the pure core; import the submodule you need.
"""
