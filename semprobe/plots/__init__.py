"""Figures drawn with matplotlib (Agg) and seaborn: CCA scatters and similarity heatmaps
(:mod:`.semantic`), accuracy and alpha curves (:mod:`.curves`) and image grids
(:mod:`.example_grids`).
"""


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), the one set-up every plot uses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
