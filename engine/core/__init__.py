"""The pure core: params and the address space, events, clocks, tempo, latent paths,
event logs and frame statistics. Nothing here imports pygame, sounddevice, sockets or
MIDI ports."""
