#!/bin/sh
# setup.sh: Gradescope runs this once, as root, when it builds the autograder image
# (Ubuntu). It installs a C compiler, the sandbox (bubblewrap, and libseccomp for the
# system-call filter), Open MPI (lesson 12's ranks; without it lesson 12 is skipped) and
# builds the kit, plain and with the sanitizers, so that grading
# a submission only compiles the student's files. NATIVE=0: no -march=native,
# since the machine that builds the image need not be the one that grades (run_autograder
# grades with NATIVE=0 too).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential make unzip xz-utils bzip2 \
    bubblewrap libseccomp-dev openmpi-bin libopenmpi-dev >/dev/null
cd /autograder/source/moekit
make -s NATIVE=0 SRC=solutions check-build grade-tools
make -s NATIVE=0 SRC=solutions SANITIZE=1 check-build
echo "moekit autograder: ready"
