#!/bin/sh
# setup.sh: Gradescope runs this once, as root, when it builds the autograder image
# (Ubuntu). It installs a C compiler and builds the kit, plain and with the sanitizers, so
# that grading a submission only compiles the student's files.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential make >/dev/null
cd /autograder/source/moekit
make -s SRC=solutions check-build grade-tools
make -s SRC=solutions SANITIZE=1 check-build
echo "moekit autograder: ready"
