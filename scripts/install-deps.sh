#!/usr/bin/env bash
# Installs every Debian package nmc needs to build, test and run locally.
# Used by the README, .ci/run and the Dockerfile: keep it the one list.
set -euo pipefail
BUILD_PKGS="build-essential cmake pkg-config git ca-certificates
  libuv1-dev libpq-dev libcurl4-openssl-dev libmbedtls-dev libcmocka-dev libjansson-dev node-llhttp"
TEST_PKGS="postgresql postgresql-contrib prometheus wrk curl python3 python3-jwt python3-cryptography procps"
FUZZ_PKGS="clang libclang-rt-14-dev"
RUN_PKGS="libuv1 libpq5 libcurl4 libmbedtls14 libmbedcrypto7 libmbedx509-1 libjansson4 ca-certificates"
case "${1:-all}" in
  build) PKGS="$BUILD_PKGS" ;;
  runtime) PKGS="$RUN_PKGS" ;;
  fuzz) PKGS="$BUILD_PKGS $FUZZ_PKGS" ;;
  all) PKGS="$BUILD_PKGS $TEST_PKGS $FUZZ_PKGS" ;;
  *) echo "usage: $0 [build|runtime|fuzz|all]" >&2; exit 2 ;;
esac
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Node.js and npm lint openapi.yaml (Redocly CLI from npm); use the machine's
# own when it has one, else Debian's.
if [ "${1:-all}" = all ] && ! command -v npm >/dev/null; then PKGS="$PKGS nodejs npm"; fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
