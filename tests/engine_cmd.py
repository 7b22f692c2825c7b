"""The command line that starts one of the engine's programs from a Python test: through
$DRDIFF_TEST_RUNNER when that is set (scripts/test.sh runs the GPU tests once more on Debian
13's lavapipe, whose libraries need Debian 13's dynamic loader: .deps/debian13/bin/run, the
same wrapper tests/run_test.sh puts in front of the C tests), directly otherwise."""
import os


def engine_cmd(*argv):
    runner = os.environ.get("DRDIFF_TEST_RUNNER")
    return ([runner] if runner else []) + [str(a) for a in argv]
