# The Meterflow Lambda image: one image for every function, each selecting its handler with
# image_config.command (terraform/modules/functions). Build it with `make image IMAGE_REPOSITORY=...`, which
# runs `make package` first; from the repository root by hand:
#   make package && DOCKER_BUILDKIT=1 docker build --platform linux/amd64 --provenance=false \
#       -f lambda.Dockerfile -t <ecr repository url>:<tag> .
# Nothing is installed here: build/lambda/ is the task root that scripts/build_lambda_artifact.py
# built from requirements/lambda.lock and that tests/package imported, handler by handler, with
# CPython 3.12 and nothing else on sys.path. What ships is what was tested.
#
# The base image is the tag, not yet a digest: pin it where a registry is reachable with
#   docker buildx imagetools inspect public.ecr.aws/lambda/python:3.12   (the index "Digest:")
# and write FROM public.ecr.aws/lambda/python:3.12@sha256:<that digest>.
FROM public.ecr.aws/lambda/python:3.12

COPY build/lambda/ ${LAMBDA_TASK_ROOT}/

# The API's handler; every other function overrides it with image_config.command.
CMD ["app.app"]
