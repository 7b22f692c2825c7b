#!/bin/sh
# CTest's launcher for the C tests: starts TEST ARGS through $DRDIFF_TEST_RUNNER when that is set
# (a wrapper such as .deps/debian13/bin/run, which runs it on Debian 13's lavapipe), directly
# otherwise.
exec ${DRDIFF_TEST_RUNNER:+"$DRDIFF_TEST_RUNNER"} "$@"
