"""Device edges: the window, the recorder, audio out and in, MIDI notes out. Each imports
its device library (pygame, sounddevice, rtmidi, ffmpeg) only when it is used."""
