"""The main() of the Python test files that are a list of check functions: runs each,
prints PASS/FAIL with the traceback, keeps the scratch folder when something failed."""
import shutil
import traceback

import torch


def run_checks(checks, tmp):
    torch.set_num_threads(1)
    failed = 0
    for fn in checks:
        try:
            fn()
            print(f"PASS {fn.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    if failed:
        print(f"files kept in {tmp}")
        return 1
    shutil.rmtree(tmp)
    return 0
