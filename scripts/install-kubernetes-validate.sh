#!/usr/bin/env bash
# Installs kubernetes-validate (the Kubernetes OpenAPI schemas bundled in a Python package, so
# validation needs no cluster and no network at run time) into its own virtual environment,
# for server/app/tests/kubernetes.rs.
#
# Prints shell assignments on stdout, so that
#
#     eval "$(scripts/install-kubernetes-validate.sh)"
#
# exports PROSODIA_K8S_PYTHON (the venv's interpreter, which has PyYAML) and
# PROSODIA_K8S_VALIDATOR (the kubernetes-validate command). Everything else goes to stderr.
#
# Environment:
#   PROSODIA_K8S_VENV  the virtual environment (default: $HOME/.cache/prosodia-k8s-venv)
#   PYTHON             the interpreter that creates it (default: python3)
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
VENV="${PROSODIA_K8S_VENV:-$HOME/.cache/prosodia-k8s-venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "install-kubernetes-validate: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
py="$VENV/bin/python"
installed="$("$py" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)"
if [ "$installed" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
  "$py" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
fi
echo "export PROSODIA_K8S_PYTHON='$py'"
echo "export PROSODIA_K8S_VALIDATOR='$VENV/bin/kubernetes-validate'"
