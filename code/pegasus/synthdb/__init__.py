"""The generated multi-person video database with part ground truth (docs/synth_db.md).

``people`` samples identities with composable parts, ``appearance`` paints their textures,
``accessories`` builds hair, hats, eyeglasses, eyebrows and shirts, ``motion`` makes each
video's trajectories, ``scene`` renders frames, ``build`` writes the IMavatar datasets,
ground truth, manifest, contact sheet and previews (``pegasus synth-db``).
"""
