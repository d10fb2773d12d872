"""The evaluation report of a trained model (`run_show.py eval MODEL`, and the end of `train`).

    features.py  the fixed random conv network whose features the picture metrics use
    metrics.py   the numbers as pure functions of tensors (KID, PRDC, novelty, spectra, walk)
    images.py    picture models: samples, real crops, memory bank, walk -> numbers and figure data
    seq.py       note and text models: held-out loss, histograms of generated vs data
    figures.py   plain PNG charts and picture figures, Pillow only
    report.py    the command: load, dispatch on the kind, write report.md + PNGs, update the metadata
    options.py   EvalOptions (what the flags become)

Import `evaluate` from engine.eval.report (this package's __init__ imports nothing, so
engine.flags can read engine.eval.options without loading torch).
"""
