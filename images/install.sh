#!/bin/sh
# The install steps of the three Dockerfiles, in two layers so that a new nanorepo wheel
# reuses the layer of an unchanged lock:
#   install.sh lock      the locked environment into /opt/nanorepo
#   install.sh nanorepo  nanorepo's wheel, then `pip check`
# With a wheelhouse mounted at /wheels (images/build.py mounts the one it filled and
# checked against the lock's hashes) nothing is downloaded; without one, pip fetches the
# locked files from the package index. Either way every file is checked against the
# lock's hashes (--require-hashes); its two sdists are built with the build tools in
# /wheels/build (or from the index).
set -eu
pip=/opt/nanorepo/bin/pip
case "$1" in
  lock)
    python3 -m venv /opt/nanorepo
    if [ -d /wheels ]; then
      set -- --no-index --find-links /wheels --find-links /wheels/build
    else
      set --
    fi
    "$pip" install --no-cache-dir --disable-pip-version-check "$@" \
      --require-hashes --no-deps -r /tmp/nanorepo/lock.txt
    ;;
  nanorepo)
    "$pip" install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
      /tmp/nanorepo/dist/*.whl
    "$pip" check
    rm -rf /tmp/nanorepo
    ;;
  *)
    echo "usage: install.sh lock|nanorepo" >&2
    exit 2
    ;;
esac
