# syntax=docker/dockerfile:1
#
# Mug positioning worker: the RunPod serverless image.
#
# Models on a network volume (default; run `python -m scripts.fetch_models --dest
# /runpod-volume/models` once from a pod with the volume mounted):
#   docker build --platform linux/amd64 -t user/mug-positioning-worker:0.1.0 .
# Models baked into the image (endpoints without a network volume; the build needs the internet):
#   docker build --platform linux/amd64 --build-arg BAKE_MODELS=true --build-arg MODEL_DIR=/models \
#     -t user/mug-positioning-worker:0.1.0-baked .
# Models from RunPod's model cache (SPEC 8), which takes one model per endpoint: cache CLIP and
# bake the 22 MB detector (the build needs the internet):
#   docker build --platform linux/amd64 --build-arg BAKE_MODELS=true --build-arg BAKE_ONLY=detector \
#     --build-arg MODEL_DIR=/models -t user/mug-positioning-worker:0.1.0-cached .
# The RunPod Hub and the GitHub integration build .runpod/Dockerfile: this file, baked by default.
#
# Tag images with a version, never :latest: RunPod workers cache images by tag.

# RunPod serves linux/amd64 only; pinning the platform keeps builds on arm64 laptops deployable.
# CUDA 13.0 matches torch 2.14.1 from requirements.txt, a cu130 build.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 runpod/base:1.0.2-cuda1300-ubuntu2204

# HF_HUB_ENABLE_HF_TRANSFER: the base turns hf_transfer on, but it is not in our venv (the bake
# would fail on older huggingface_hub). The offline switches keep the worker off the network at run
# time; the worker sets them itself too, before ultralytics or transformers is imported.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    YOLO_OFFLINE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HUB_ENABLE_HF_TRANSFER=0 \
    DATA_DIR=/app/data

# opencv-python (pulled by ultralytics, not the headless build) needs libGL and GLib.
# Versions are not pinned: they come from the pinned base's Ubuntu release and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The base ships Python 3.9-3.13 with 3.12 as `python`; the lock is for 3.11.
RUN python3.11 -m venv "$VIRTUAL_ENV" && mkdir -p "$DATA_DIR"

# Dependencies before the code, so a code change reuses this (multi-GB) layer. Only the runtime
# requirements, resolved through the full lock. The import checks the wheels and the apt libraries.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt \
    && python -c "import cv2, torch, torchvision"

# Declared here, not at the top, so baked and volume builds share the dependency layer above.
ARG MODEL_DIR=/runpod-volume/models
ENV MODEL_DIR=${MODEL_DIR}

# Only what the bake needs, so a change elsewhere in the code does not download the models again.
# fetch_models is the one script the image runs (`python -m scripts.fetch_models`, hence the
# package's __init__.py); the other scripts and training/ are development tools and stay out.
COPY models/ models/
COPY scripts/__init__.py scripts/fetch_models.py scripts/

# The bake lifts the offline switches for this RUN only, keeps the libraries' caches in /tmp so
# only the model folder stays in the layer, and refuses /runpod-volume: a mounted network volume
# would hide the baked models.
ARG BAKE_MODELS=false
# all: both models; detector: only the 22 MB detector, for an endpoint whose one cached model
# (RunPod allows one per endpoint) is CLIP
ARG BAKE_ONLY=all
RUN if [ "$BAKE_MODELS" = "true" ]; then \
        case "$MODEL_DIR" in \
            /runpod-volume|/runpod-volume/*) \
                echo "BAKE_MODELS=true: set MODEL_DIR outside /runpod-volume, e.g. /models" >&2; \
                exit 1 ;; \
        esac; \
        HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 YOLO_OFFLINE=0 \
        HF_HOME=/tmp/bake/hf YOLO_CONFIG_DIR=/tmp/bake/yolo MPLCONFIGDIR=/tmp/bake/mpl \
            python -m scripts.fetch_models --dest "$MODEL_DIR" --only "$BAKE_ONLY" \
        && rm -rf /tmp/bake "$MODEL_DIR"/*/.cache; \
    fi

# The application, last: it changes most often.
COPY handler.py test_input.json ./
COPY worker/ worker/
COPY positioning/ positioning/
COPY rules/ rules/
COPY storage/ storage/

# A queue worker: no port to expose. RunPod runs containers as root (the volume is root's).
CMD ["python", "-u", "handler.py"]
