"""The declared schema of every config key: type, nullability, allowed values, meaning.

Values (defaults included) live only in ``confs/*.conf``; this file says what each key *is*.
Every key listed here must be present in a resolved config (``confs/base.conf`` sets them
all), so a missing key is always an error, never a silent default. Sections are added here
as pipeline stages land.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One config key.

    Attributes:
        type: ``int``, ``float`` (ints accepted), ``str``, ``bool`` or ``list``.
        doc: what the key means, with units.
        nullable: ``null`` is allowed.
        choices: allowed values (empty: any value of the type).
        item_type: element type of a list key.
        length: required list length (None: any).
    """

    type: type
    doc: str
    nullable: bool = False
    choices: tuple = ()
    item_type: type | None = None
    length: int | None = None


SCHEMA: dict[str, Key] = {
    # --- experiment: where runs go and how they are seeded -------------------------------------
    "experiment.name": Key(str, "run name; outputs go to <output_root>/<name>/"),
    "experiment.output_root": Key(str, "folder holding run folders (relative to the working dir)"),
    "experiment.seed": Key(int, "base random seed (each rank adds its rank)"),
    "experiment.device": Key(str, "compute device", choices=("auto", "cpu", "cuda")),
    "experiment.num_threads": Key(
        int,
        "CPU threads of torch in each process (torch.set_num_threads); 0 = torch's default. Use 1 "
        "when the cores are shared with other jobs (spinning OpenMP threads then cost 10-30x)",
    ),
    # --- head_model: which FLAME-format model and how it is used -------------------------------
    "head_model.path": Key(
        str,
        "FLAME-format model: generic_model.pkl (FLAME 2020), flame2023.pkl, flame2023_Open.pkl "
        "or a project .npz. null = the generated stand-in head at standin.output",
        nullable=True,
    ),
    "head_model.landmark_embedding": Key(
        str,
        "landmark file: DECA/FLAME landmark_embedding.npy or a project .npz (70 barycentric "
        "landmarks). null = the embedding stored in the model file (stand-in head)",
        nullable=True,
    ),
    "head_model.iris_vertex_ids": Key(
        list,
        "vertex ids of the 2 iris centres [eye of landmarks 36-41, eye of 42-47], used when the "
        "landmark file has only the 68 iBUG landmarks (FLAME + DECA embedding)",
        item_type=int,
        length=2,
    ),
    "head_model.texture_space": Key(
        str, "FLAME texture-space file with vt/ft (e.g. FLAME_texture.npz); null = none or the "
        "model file's own", nullable=True,
    ),
    "head_model.scale": Key(float, "scale applied once at load to template, bases (FLAME ×4)"),
    "head_model.n_shape": Key(int, "identity components used (zero-padded if the file has fewer)"),
    "head_model.n_expr": Key(int, "expression components used (zero-padded if the file has fewer)"),
    "head_model.canonical_jaw_opening": Key(float, "jaw opening of the canonical state, radians"),
    # --- standin: the generated stand-in head model --------------------------------------------
    "standin.output": Key(str, "where the generated stand-in head .npz is written / cached"),
    "standin.seed": Key(int, "generator seed (0 = the project's default head)"),
    "standin.n_shape": Key(int, "identity components generated (≥ 20)"),
    "standin.n_expr": Key(int, "expression components generated (≥ 10)"),
    # --- picture: the head-model overview grid -------------------------------------------------
    "picture.output": Key(str, "PNG file written by `pegasus picture`"),
    "picture.image_size": Key(int, "side of each tile in pixels"),
    "picture.n_random": Key(int, "number of random shape/expression/pose samples in the grid"),
    "picture.shape_std": Key(float, "std of random identity coefficients"),
    "picture.expr_std": Key(float, "std of random expression coefficients"),
    "picture.pose_std": Key(float, "std of random neck/jaw rotations, radians"),
    "picture.camera_distance": Key(float, "camera distance from the head, scaled head units"),
    "picture.focal": Key(float, "focal length in units of the image side"),
    # --- dataset: which IMavatar-layout videos a single-person avatar trains / tests on --------
    "dataset.root": Key(str, "datasets folder holding <subject>/<subject>/<video>/"),
    "dataset.subject": Key(str, "subject (person) name"),
    "dataset.train_videos": Key(list, "training videos (splits are videos, never frames)", item_type=str),
    "dataset.test_videos": Key(list, "held-out test videos", item_type=str),
    "dataset.resolution": Key(int, "square image side in pixels the images are resized to"),
    "dataset.train_stride": Key(int, "use every n-th training frame"),
    "dataset.test_stride": Key(int, "use every n-th test frame"),
    "dataset.load_semantic": Key(bool, "load semantic label maps (needed by part losses)"),
    # --- train: the optimisation loop (model sizes and loss weights live in model / loss) -----
    "train.epochs": Key(int, "epochs to train"),
    "train.max_batch": Key(int, "largest batch (frames per step per process)"),
    "train.max_points_per_batch": Key(int, "batch = min(max_points_per_batch // points, max_batch)"),
    "train.lr_milestones": Key(list, "epochs at which every learning rate is multiplied by lr_gamma",
                               item_type=int),
    "train.lr_gamma": Key(float, "learning-rate decay factor at each milestone"),
    "train.num_workers": Key(int, "DataLoader worker processes (0 = load in the training process)"),
    "train.checkpoint_every_iters": Key(int, "also checkpoint every n optimizer steps (0 = per epoch only)"),
    "train.log_every_iters": Key(int, "TensorBoard scalars every n steps"),
    "train.image_every_iters": Key(int, "TensorBoard image grid every n steps (0 = never)"),
    # --- synth_db: the generated multi-person video database (the embedded default data) -----
    "synth_db.root": Key(str, "output folder: <root>/<person>/<person>/<video>/, ground_truth/, previews/"),
    "synth_db.seed": Key(int, "population, motion and texture seed (same seed → byte-identical PNGs and JSON)"),
    "synth_db.target": Key(str, "name of the target, the person PEGASUS personalises"),
    "synth_db.new_person": Key(str, "name of the person of zero-shot transfer"),
    "synth_db.db_prefix": Key(str, "DB people are named <db_prefix>00, <db_prefix>01, …"),
    "synth_db.n_db": Key(int, "number of DB people (≥ 1)"),
    "synth_db.train_video": Key(str, "folder name of each person's training video"),
    "synth_db.test_video": Key(str, "folder name of each person's test video (different motion)"),
    "synth_db.train_frames": Key(int, "frames of each training video"),
    "synth_db.test_frames": Key(int, "frames of each test video"),
    "synth_db.fps": Key(float, "frame rate of the motion and of the preview mp4s, frames per second"),
    "synth_db.image_size": Key(int, "side of the square frames, pixels"),
    "synth_db.supersample": Key(int, "renderer subsamples per pixel side (anti-aliased masks and edges)"),
    "synth_db.texture_size": Key(int, "side of a person's head texture in texels (the atlas is twice as wide)"),
    "synth_db.batch_size": Key(int, "frames per render call"),
    "synth_db.workers": Key(int, "worker processes (1 = render in this process)"),
    "synth_db.camera_distance": Key(float, "camera distance from the head origin along +z, scaled head units"),
    "synth_db.focal": Key(float, "focal length in units of the image side (intrinsics [-focal, focal, 0.5, 0.5])"),
    "synth_db.camera_height": Key(float, "height y of the point the camera centres, scaled head units"),
    "synth_db.camera_jitter": Key(float, "amplitude of the smooth per-frame camera translation, scaled head units"),
    "synth_db.max_yaw_deg": Key(float, "peak head yaw (turn left/right) of every video, degrees"),
    "synth_db.max_pitch_deg": Key(float, "peak head pitch (nod), degrees"),
    "synth_db.max_roll_deg": Key(float, "peak head roll (tilt), degrees"),
    "synth_db.head_motion_hz": Key(list, "frequency range [min, max] of the head rotation, Hz", item_type=float, length=2),
    "synth_db.expression_hz": Key(list, "frequency range [min, max] of the expressions, Hz", item_type=float, length=2),
    "synth_db.jaw_hz": Key(list, "frequency range [min, max] of the jaw (talking), Hz", item_type=float, length=2),
    "synth_db.max_jaw_opening": Key(float, "peak jaw opening, radians"),
    "synth_db.expression_amplitude": Key(float, "peak |coefficient| of the expression components (head-model units)"),
    "synth_db.blink_components": Key(list, "expression components driven together as blinks (0 open, 1 closed)",
                                     item_type=str),
    "synth_db.blink_interval_s": Key(list, "range [min, max] of the time between blinks, seconds", item_type=float,
                                     length=2),
    "synth_db.gaze_amplitude": Key(float, "peak eyeball rotation of the gaze, radians"),
    "synth_db.ambient": Key(float, "ambient light weight (Lambertian shading)"),
    "synth_db.diffuse": Key(float, "diffuse light weight (Lambertian shading)"),
    "synth_db.light_azimuth_deg": Key(float, "peak |azimuth| of each person's light (shared by their videos) from the camera axis, degrees"),
    "synth_db.light_elevation_deg": Key(list, "range [min, max] of each person's light elevation, degrees",
                                        item_type=float, length=2),
    "synth_db.identity_std": Key(float, "std of the sampled identity coefficients not owned by a part"),
    "synth_db.db_accessory_fraction": Key(float, "fraction of DB people wearing each worn accessory (hat, "
                                          "eyeglasses); the target and the new person wear none"),
    "synth_db.gt_categories": Key(list, "part categories of the ground truth 'person with DB person k's part'",
                                  item_type=str),
    "synth_db.gt_frame_stride": Key(int, "every n-th test frame gets ground truth"),
    "synth_db.contact_tile": Key(int, "side of each contact-sheet tile, pixels"),
    "synth_db.previews": Key(bool, "write an mp4 per video to <root>/previews/"),
    # --- test: evaluation render sets and metrics (pegasus.eval.render_sets, docs/evaluation.md) ---
    "test.sets": Key(list, "render sets, any of: test (test frames scored against ground truth), "
                     "driving (the driving video's motion on the target), yaw (a head turn)", item_type=str),
    "test.channels": Key(list, "render_fn channels written as PNGs and mp4s (must include rgb), e.g. "
                         "rgb, normal, albedo, shading, mask", item_type=str),
    "test.frame_stride": Key(int, "every n-th frame of the test and driving videos is rendered"),
    "test.batch_size": Key(int, "frames per render_fn call (memory stays bounded by one batch)"),
    "test.erode_dilate": Key(bool, "open the rgb render (3x3 erode, then dilate) before scoring, as "
                             "PointAvatar's rgb_erode_dilate"),
    "test.no_cloth": Key(bool, "also report <metric>_no_cloth with cloth labels {15, 16} of the GT "
                         "semantic map set to white in both images (needs semantic maps)"),
    "test.lpips_weights": Key(str, "LPIPS AlexNet weights: a .pth file or a folder of them (torchvision "
                              "alexnet-owt-7be5be79.pth + lpips v0.1 alex.pth); null = LPIPS reported as null",
                              nullable=True),
    "test.yaw_max_deg": Key(float, "the yaw set turns the head (neck slot) from -max to +max, degrees"),
    "test.yaw_frames": Key(int, "frames of the yaw set"),
    "test.yaw_expression_frame": Key(int, "target frame whose expression, jaw and eyes the yaw set uses; "
                                     "null = neutral", nullable=True),
    "test.camera_frame": Key(int, "target frame (0-based index in the test dataset) whose camera and "
                             "identity the driving and yaw sets use"),
    "test.driving_flame_params": Key(str, "driving video: its flame_params.json or folder; null = no "
                                     "driving set", nullable=True),
    "test.fps": Key(float, "frame rate of the mp4s, frames per second"),
    "test.grid_rows": Key(int, "frames (rows) of each set's grid.png, evenly spaced"),
    # --- model: the point avatar (pegasus.avatar; METHOD §4/§5; originals' values in docs/avatar.md)
    "model.latent_dim": Key(int, "size of the latent code fed to every field (0 = single-person avatar; "
                            "PEGASUS: 369)"),
    "model.shape_cancel": Key(bool, "generic canonical space: canonical head model at zero shape, each point "
                              "adds the identity displacement S(v*)·β of its nearest head-model vertex"),
    "model.points_per_pixel": Key(int, "K, points composited per pixel (10)"),
    "model.normal_jacobian_grad": Key(bool, "back-propagate through the deformation Jacobian of the normals "
                                      "(false: normals use a detached Jacobian, a faster approximation)"),
    "model.points.init_count": Key(int, "initial number of canonical points (400)"),
    "model.points.init_sphere_radius": Key(float, "radius of the initial sphere of points, scaled head units"),
    "model.points.init_radius": Key(float, "initial splat radius, NDC units (0.169 for 400 points)"),
    "model.points.radius_factor": Key(float, "radius multiplier at each upsampling (0.75)"),
    "model.points.min_radius": Key(float, "radius floor, NDC units (PointAvatar 0.005 at 512²; ~1 px)"),
    "model.points.prune_min_radius": Key(float, "invisible points are pruned only while radius ≥ this, NDC"),
    "model.points.prune_from_epoch": Key(int, "first epoch (0-based) after which invisible points are pruned"),
    "model.points.upsample_freq": Key(int, "duplicate the points after every n-th epoch (PointAvatar 5, "
                                      "PEGASUS 2)"),
    "model.points.settle_epochs": Key(int, "no upsampling in the last n epochs: the last duplicated points "
                                      "get n epochs to settle (3)"),
    "model.points.max_points": Key(int, "cap on the number of points (PointAvatar 409600, PEGASUS 174000)"),
    "model.geometry.hidden_layers": Key(int, "hidden layers of the SDF/albedo MLP (PointAvatar 8 + output)"),
    "model.geometry.width": Key(int, "width of the SDF/albedo MLP (PointAvatar 256, PEGASUS 512)"),
    "model.geometry.num_freqs": Key(int, "positional-encoding frequencies of the canonical point (6)"),
    "model.geometry.init_radius": Key(float, "sphere radius of the geometric initialisation (0.6)"),
    "model.geometry.segmentation": Key(bool, "also predict a per-point segmentation logit (PEGASUS)"),
    "model.deformer.hidden_layers": Key(int, "hidden layers of the deformer MLP (4)"),
    "model.deformer.width": Key(int, "width of the deformer MLP (128)"),
    "model.deformer.skinning_temperature": Key(float, "skinning weights = softmax(temperature · logits) (20)"),
    "model.canonical_offset.enabled": Key(bool, "PEGASUS latent-conditioned canonical offset x_c = x + Δ_cc(x, z)"),
    "model.canonical_offset.hidden_layers": Key(int, "hidden layers of the canonical-offset MLP"),
    "model.canonical_offset.width": Key(int, "width of the canonical-offset MLP"),
    "model.shading.hidden": Key(list, "hidden widths of the shading MLP (PointAvatar [64, 64], PEGASUS "
                                "[512, 512])", item_type=int),
    "model.refine.enabled": Key(bool, "learn per-frame corrections of expression, pose and translation"),
    "model.refine.start_epoch": Key(int, "epoch (0-based) from which the per-frame corrections are used"),
    "model.lr.points": Key(float, "Adam learning rate of the canonical point positions"),
    "model.lr.geometry": Key(float, "Adam learning rate of the SDF/albedo MLP"),
    "model.lr.deformer": Key(float, "Adam learning rate of the deformer (and canonical-offset) MLP"),
    "model.lr.shading": Key(float, "Adam learning rate of the shading MLP"),
    "model.lr.refine": Key(float, "Adam learning rate of the per-frame corrections"),
    # --- loss: weights of the avatar's loss terms (METHOD §4 defaults)
    "loss.rgb": Key(float, "weight of the L1 colour loss over all pixels (1)"),
    "loss.mask": Key(float, "weight of the L1 mask loss (1)"),
    "loss.vgg": Key(float, "weight of the VGG16 perceptual loss (0.1; used only with loss.vgg_weights)"),
    "loss.vgg_weights": Key(str, "torchvision-layout VGG16 state dict file (e.g. vgg16-397923af.pth); "
                            "null = no perceptual loss", nullable=True),
    "loss.sdf": Key(float, "weight of mean(SDF²) at the points (1)"),
    "loss.eikonal": Key(float, "weight of the eikonal loss at the points and jittered points (0.1)"),
    "loss.eikonal_jitter": Key(float, "half-width of the uniform jitter of the eikonal points, head units"),
    "loss.flame_prior": Key(float, "λ of the head-model priors on skinning/pose/expression bases (10)"),
    "loss.flame_prior_halve_epochs": Key(list, "epochs (0-based) at which λ is halved (10, 20, 30, 40)",
                                         item_type=int),
    "loss.skinning_prior": Key(float, "inner weight of MSE(w, w_FLAME(v*)) (0.1)"),
    "loss.pose_prior": Key(float, "inner weight of MSE(10P, 10P_FLAME(v*)) (10)"),
    "loss.expression_prior": Key(float, "inner weight of mean((10E − 10E_FLAME)² / (scale · var ψ)) (10)"),
    "loss.expression_variance_scale": Key(float, "the scale in the expression prior's divisor (50)"),
    "loss.expression_variance_floor": Key(float, "lower bound of var ψ per component (unused components)"),
    "loss.segmentation": Key(float, "weight of the BCE of the rendered part probability (PEGASUS 0.1)"),
    # --- preprocess: raw videos → IMavatar-layout datasets (pegasus.preprocess, docs/preprocess.md) ----
    "preprocess.output_root": Key(str, "datasets folder the subject is written to: <output_root>/<subject>/<subject>/"
                                  "<video>/, work files in <output_root>/<subject>/preprocess/"),
    "preprocess.image_size": Key(int, "side of the square cropped frames, pixels (512 in the originals)"),
    "preprocess.frame_stride": Key(int, "keep every n-th source frame"),
    "preprocess.max_frames": Key(int, "keep at most this many frames per video (after the stride); null = all",
                                 nullable=True),
    "preprocess.video_suffixes": Key(list, "file suffixes taken as videos (lower case, with the dot)", item_type=str),
    "preprocess.preview": Key(bool, "write preview.mp4 / preview.png per video (landmarks, matte, labels)"),
    "preprocess.preview_size": Key(int, "side of each preview tile, pixels"),
    "preprocess.face.min_detection_confidence": Key(float, "MediaPipe face-detector score needed to start tracking "
                                                    "a face, [0, 1]"),
    "preprocess.face.min_tracking_confidence": Key(float, "MediaPipe face-mesh score below which the detector runs "
                                                   "again, [0, 1]"),
    "preprocess.landmarks.backend": Key(str, "68-point landmarks: dlib (offline default) or face_alignment (FAN; "
                                        "the face-alignment package and its downloaded weights)",
                                        choices=("dlib", "face_alignment")),
    "preprocess.landmarks.dlib_predictor": Key(str, "dlib shape_predictor_68_face_landmarks.dat; null = the "
                                               "face-recognition-models package's copy or /usr/share/dlib",
                                               nullable=True),
    "preprocess.landmarks.dlib_box": Key(list, "dlib's face box [left, top, right, bottom] in units of the face-mesh "
                                         "box width from its top-left corner (fitted to dlib's own detector boxes)",
                                         item_type=float, length=4),
    "preprocess.crop.mode": Key(str, "fixed: one square box per video (matches the one camera per video); follow: "
                                "a box per frame, smoothed in time", choices=("fixed", "follow")),
    "preprocess.crop.scale": Key(float, "crop side / face size (the larger side of the face-mesh box)"),
    "preprocess.crop.vertical_offset": Key(float, "crop centre below the face-box centre, in face sizes (negative: "
                                           "up, more hair and less neck)"),
    "preprocess.crop.smoothing_s": Key(float, "follow mode: std of the Gaussian smoothing the box over time, seconds"),
    "preprocess.matte.backend": Key(str, "mediapipe (selfie segmentation + refinement, offline) or modnet (a "
                                    "MODNet ONNX file, matte.modnet_weights)", choices=("mediapipe", "modnet")),
    "preprocess.matte.model_selection": Key(int, "MediaPipe selfie model: 0 general (256²), 1 landscape (144×256)",
                                            choices=(0, 1)),
    "preprocess.matte.refine_radius": Key(int, "guided-filter radius of the edge refinement, pixels of the crop; "
                                          "0 = the network's soft mask as is"),
    "preprocess.matte.refine_eps": Key(float, "guided-filter regularisation, intensity² in [0, 1] (larger: smoother "
                                       "edges that follow the image less)"),
    "preprocess.matte.refine_subsample": Key(int, "the guided filter's coefficients are computed this many times "
                                             "coarser (fast guided filter; 1 = exact)"),
    "preprocess.matte.keep_largest": Key(bool, "keep only the largest connected foreground region"),
    "preprocess.matte.modnet_weights": Key(str, "MODNet ONNX file (docs/preprocess.md says where to get it)",
                                           nullable=True),
    "preprocess.parsing.backend": Key(str, "mesh (face-mesh polygons + matte + skin colour, offline; no glasses, "
                                      "ears, earrings, necklace, hat) or bisenet (a BiSeNet ONNX file)",
                                      choices=("mesh", "bisenet")),
    "preprocess.parsing.foreground_threshold": Key(float, "matte value (0-1) from which a pixel is labelled, "
                                                   "else background"),
    "preprocess.parsing.hair_line": Key(float, "outside the face oval, hair (or skin) only above this line, a "
                                        "fraction of the chin → forehead distance above the chin; below it neck "
                                        "or cloth"),
    "preprocess.parsing.skin_distance": Key(float, "skin-like colour: largest Mahalanobis distance (YCrCb) from "
                                            "the colours of the frame's cheeks"),
    "preprocess.parsing.skin_min_luma": Key(float, "skin-like colour: smallest luma as a fraction of the cheeks' mean "
                                            "(darker pixels are hair or cloth)"),
    "preprocess.parsing.bisenet_weights": Key(str, "BiSeNet face-parsing ONNX file (19 CelebAMask-HQ classes)",
                                              nullable=True),
    "preprocess.accessories.backend": Key(str, "none, or sam: SAM masks of the worn accessories painted into the "
                                          "label maps", choices=("none", "sam")),
    "preprocess.accessories.worn": Key(list, "accessories the subject wears, any of eyeglasses, hat (sam backend)",
                                       item_type=str),
    "preprocess.accessories.sam_checkpoint": Key(str, "SAM checkpoint file, e.g. sam_vit_b_01ec64.pth",
                                                 nullable=True),
    "preprocess.accessories.sam_model_type": Key(str, "SAM architecture of the checkpoint",
                                                 choices=("vit_h", "vit_l", "vit_b")),
    "preprocess.filter.landmark_tolerance": Key(float, "landmark failure: median landmark-to-mesh distance at the "
                                                "anchor points above this many face sizes"),
    "preprocess.filter.blur_ratio": Key(float, "blur: variance of the Laplacian of the face below this fraction of "
                                        "the video's median (0 = never)"),
    "preprocess.filter.jump_threshold": Key(float, "jump: landmarks further than this many face sizes (mean over "
                                            "points) from every constant-velocity prediction from the neighbouring "
                                            "frames"),
    # --- preprocess.tracking: FLAME fit to the landmarks (pegasus.preprocess.tracking, docs/tracking.md)
    "preprocess.tracking.focal": Key(float, "focal length in units of the image side; intrinsics [-focal, focal, "
                                     "0.5, 0.5] (IMavatar: 1500 px at 512² = 2.9296875)"),
    "preprocess.tracking.shared_shape": Key(bool, "one shape for all videos tracked together (one person); false: "
                                            "each video is fitted on its own with its own shape"),
    "preprocess.tracking.lr": Key(float, "Adam learning rate at the start of each stage (IMavatar 1e-2)"),
    "preprocess.tracking.lr_decay": Key(float, "the learning rate decays exponentially to lr·lr_decay over each "
                                        "stage (1 = constant)"),
    "preprocess.tracking.rigid_iterations": Key(int, "Adam steps of stage 1: neck rotation and camera translation"),
    "preprocess.tracking.iterations": Key(int, "Adam steps of stage 2: shape, expression, neck, jaw, eyes, "
                                          "translation"),
    "preprocess.tracking.shape_prior": Key(float, "weight of mean(shape²), relative to the mean landmark distance "
                                           "in normalised image coordinates [-1, 1] (IMavatar 1e-2)"),
    "preprocess.tracking.expression_prior": Key(float, "weight of mean(expression²) (IMavatar 1e-2)"),
    "preprocess.tracking.pose_prior": Key(float, "weight of mean(θ²) of the jaw and eye rotations, radians"),
    "preprocess.tracking.limit_weight": Key(float, "weight of mean(excess²) of the jaw and eye rotations outside "
                                            "their limits, radians"),
    "preprocess.tracking.jaw_opening_range": Key(list, "[min, max] jaw opening (rotation about x), radians",
                                                 item_type=float, length=2),
    "preprocess.tracking.jaw_side_max": Key(float, "largest |jaw rotation| about y and z, radians"),
    "preprocess.tracking.eye_max": Key(float, "largest |eye rotation| per axis-angle component, radians"),
    "preprocess.tracking.smooth_expression": Key(float, "weight of mean(Δexpression²/gap) between consecutive fitted "
                                                 "frames of a video, gap in frames (IMavatar 0.1)"),
    "preprocess.tracking.smooth_pose": Key(float, "weight of mean(Δpose²/gap) of neck, jaw and eyes, radians "
                                           "(IMavatar 10)"),
    "preprocess.tracking.smooth_translation": Key(float, "weight of mean(Δt²/gap) of the camera translation, scaled "
                                                  "head units (IMavatar 10)"),
    "preprocess.tracking.init_backend": Key(str, "starting point of the fit: none (zero shape, expression, pose; "
                                            "closed-form translation) or deca (DECA's codes; needs FLAME as the head "
                                            "model, docs/preprocess.md)", choices=("none", "deca")),
    "preprocess.tracking.deca_model": Key(str, "DECA's deca_model.tar, run here with the decalib package when "
                                          "deca_codes is null (docs/preprocess.md says where to get both)",
                                          nullable=True),
    "preprocess.tracking.deca_codes": Key(str, "precomputed DECA codes: an .npz per video with per-frame shape, exp, "
                                          "pose, cam (and tform); {video} in the path is the video name. null = run "
                                          "DECA (deca_model)", nullable=True),
}
