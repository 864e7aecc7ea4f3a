"""Figures drawn with matplotlib (Agg) and seaborn: CCA scatters and similarity heatmaps
(:mod:`.semantic`), accuracy and alpha curves (:mod:`.curves`) and image grids
(:mod:`.example_grids`).
"""
