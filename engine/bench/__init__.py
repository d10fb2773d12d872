"""Benchmark commands (`run_show.py bench ...`) and their harnesses: a private JACK
server, an OSC flood sender. Every performance figure in docs/BENCHMARKS.md comes from here."""
