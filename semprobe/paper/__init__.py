"""The papers' claims checked on a set of results (:mod:`.findings`).
"""
