"""PEGASUS: personalised generative 3D head avatars with composable attributes.

Layers follow the pipeline: ``config`` → ``geometry`` → ``headmodel`` → ``data`` →
``render`` → (avatar, train, synth, transfer, eval as they land) → ``cli``.
"""

__version__ = "0.1.0"
