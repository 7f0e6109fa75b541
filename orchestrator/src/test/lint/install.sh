#!/bin/sh
# Installs the Node tools of package-lock.json (exact versions) into DEST with 'npm ci', for the tests
# that run them (KubernetesSchemaTest, OpenApiLintTest). The build runs this before the tests, so the
# tests themselves fetch nothing. Without npm the tests are skipped, except where CI or
# FERRY_REQUIRE_TOOLS=1 is set: there this fails.
#   install.sh DEST
set -eu
src=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
dest=${1:?usage: install.sh DEST}
if ! command -v npm >/dev/null 2>&1; then
    if [ -n "${CI:-}" ] && [ "${CI}" != false ] || [ "${FERRY_REQUIRE_TOOLS:-}" = 1 ]; then
        echo "install.sh: npm is not on the PATH (Node.js 20 or newer with npm is needed)" >&2
        exit 1
    fi
    echo "install.sh: npm is not on the PATH; the Kubernetes schema and OpenAPI lint tests will be skipped" >&2
    exit 0
fi
mkdir -p "$dest"
cp "$src/check-kubernetes.mjs" "$src/redocly.yaml" "$src/.redocly.lint-ignore.yaml" "$dest/"
# npm ci starts from an empty node_modules every time; skip it when the same lock is installed.
if [ -f "$dest/node_modules/.package-lock.json" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
    exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
