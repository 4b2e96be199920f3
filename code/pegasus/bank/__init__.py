"""The DB avatar bank: avatars of other people and their renders driven by the target (METHOD §1 step 2).

:mod:`.settings` declares the ``bank`` section, :mod:`.jobs` the training jobs and their
shards, :mod:`.cross_drive` the cross-driven renders, :mod:`.score` their scores against the
synthetic database's ground truth, :mod:`.run` the command that does it all (docs/bank.md).
"""
