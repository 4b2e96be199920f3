"""Preprocessing of monocular videos into IMavatar-layout datasets (docs/preprocess.md).

- ``pipeline``: the stages (detect, crop, analyse, filter, track, write, preview), restartable
  and written atomically; ``preprocess_subject`` is the entry point of ``pegasus preprocess``.
- ``video``: decoding; ``face``: face mesh, dlib landmarks, irises; ``crop``: square crops and
  their maps; ``matte``: person segmentation + edge refinement; ``parsing``: label maps from
  the mesh; ``filtering``: exclusion reasons; ``analysis``: the per-frame steps together;
  ``preview``: preview videos; ``settings``: the config section; ``optional``: MODNet,
  BiSeNet, face_alignment and SAM for users who supply their files.
- ``tracking``: the FLAME fit to the landmarks (docs/tracking.md).

MediaPipe and dlib are imported only when a stage needs them.
"""
