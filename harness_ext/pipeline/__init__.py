"""Pipeline: an experiment file -> every stage run in order, resumably.

experiment parses the YAML spec, check validates it up front, stages is the content-keyed stage engine,
runner builds the stages of an experiment, report renders what a run measured.
"""
