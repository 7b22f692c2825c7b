"""drdiff as an embedder gets it: `cmake --install` into a fresh prefix, then
samples/embed/minimal.c built against what was installed, four ways (pkg-config and
find_package, each with libdrdiff.so and with libdrdiff.a), and run on the shipped model; and
a C++ program using drdiff.h.

Checks: the installed files are there; libdrdiff.so and libdrdiff.a make global exactly the
functions drdiff.h marks DRD_API (no internal or volk symbol leaks into an app's namespace),
and the .so does not link against libvulkan; an app that calls libvulkan itself and links
either library runs (with volk's pointers global, its calls bound to them and crashed); every build of the sample prints the same text as the installed CLI, which finds
the installed model by itself, for the same prompt and seed; and with no Vulkan driver to find
the sample falls back to the CPU engine and prints what `drdiff generate --backend cpu` does."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.environ["DRDIFF_SOURCE"]
BUILD = os.environ["DRDIFF_BUILD"]
PROMPT, NEW, SEED = "The history of the city", "16", "5"


APP_WITH_VULKAN = r"""
#include <drdiff.h>
#include <stdint.h>
#include <stdio.h>
int32_t vkEnumerateInstanceVersion(uint32_t *version); /* from libvulkan, without its headers */
int main(void) {
  uint32_t v = 0;
  int32_t r = vkEnumerateInstanceVersion(&v);
  printf("loader %u.%u, drdiff says %s\n", v >> 22, (v >> 12) & 0x3ffu, drd_status_string(DRD_OK));
  return r != 0;
}
"""


# drdiff.h from C++ (apps and Android's JNI glue often are): C linkage, no C-only syntax
APP_CXX = r"""
#include <drdiff.h>
#include <cstdio>
int main() {
  drd_model_info info = {};
  std::printf("%s, %s\n", drd_status_string(drd_model_get_info(nullptr, &info)), drd_status_string(DRD_OK));
  return 0;
}
"""


def run(args, env=None, what=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, encoding="utf-8", errors="replace",
                       timeout=600, env=env)
    if r.returncode != 0:
        raise SystemExit(f"FAIL {what or args[0]}: rc={r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    return r


def api_functions():
    """The names drdiff.h declares with DRD_API."""
    text = open(os.path.join(SOURCE, "runtime", "include", "drdiff.h"), encoding="utf-8").read()
    names = set(re.findall(r"^DRD_API [^(;]*?\b(drd_\w+)\(", text, re.M))
    if len(names) < 10:
        raise SystemExit(f"FAIL: only {len(names)} DRD_API functions parsed from drdiff.h")
    return names


def check_shared_library(libdir):
    lib = os.path.join(libdir, "libdrdiff.so")
    want = api_functions()
    for path, nm in ((lib, ["nm", "-D", "--defined-only"]), (os.path.join(libdir, "libdrdiff.a"),
                                                          ["nm", "-g", "--defined-only"])):
        out = run([*nm, path]).stdout
        # "name.o:" headers and blank lines aside; _init, _fini and the like are the linker's
        exported = {line.split()[-1] for line in out.splitlines() if line.strip() and not line.endswith(":")}
        exported = {n for n in exported if not n.startswith("_")}
        if exported != want:
            raise SystemExit(f"FAIL: {os.path.basename(path)} makes global {sorted(exported - want)} beyond "
                             f"drdiff.h and lacks {sorted(want - exported)}")
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", run(["readelf", "-d", lib]).stdout)
    if any("vulkan" in n for n in needed):
        raise SystemExit(f"FAIL: libdrdiff.so links against {needed}: Vulkan must be loaded at run time")
    soname = re.findall(r"\(SONAME\).*\[(.*)\]", run(["readelf", "-d", lib]).stdout)
    if not soname or not os.path.exists(os.path.join(libdir, soname[0])):
        raise SystemExit(f"FAIL: soname {soname} not installed in {libdir}")
    print(f"ok: libdrdiff.so ({soname[0]}) and libdrdiff.a make the {len(want)} API functions global and "
          f"nothing else; the .so needs {needed}")


def build_samples(prefix, libdir, work):
    """The sample built four ways; returns {how: (executable, extra environment)}."""
    sample = os.path.join(SOURCE, "samples", "embed")
    cc = os.environ.get("CC", "cc")
    pc_env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
    exes = {}
    for how, static in (("pkg-config shared", []), ("pkg-config static", ["--static"])):
        flags = run(["pkg-config", "--cflags", "--libs", *static, "drdiff"], env=pc_env).stdout.split()
        if static:  # pkg-config --static still says -ldrdiff, which the linker resolves to the .so
            flags = [f for f in flags if f != "-ldrdiff"] + [os.path.join(libdir, "libdrdiff.a")] + \
                    [f for f in flags if f.startswith("-l") and f != "-ldrdiff"]
        exe = os.path.join(work, how.replace(" ", "-"))
        run([cc, "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-o", exe,
             os.path.join(sample, "minimal.c"), *flags], what=f"{how} build")
        exes[how] = (exe, {"LD_LIBRARY_PATH": libdir} if not static else {})
    for how, static in (("find_package shared", "OFF"), ("find_package static", "ON")):
        b = os.path.join(work, how.replace(" ", "-"))
        run(["cmake", "-S", sample, "-B", b, f"-DCMAKE_PREFIX_PATH={prefix}", f"-DDRDIFF_STATIC={static}",
             "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror"], what=f"{how} configure")
        run(["cmake", "--build", b], what=f"{how} build")
        exes[how] = (os.path.join(b, "minimal"), {})  # CMake puts libdrdiff.so's folder in the rpath
    # an app that calls the Vulkan loader itself: drdiff's copy of volk must not capture its calls
    clash = os.path.join(work, "app_with_vulkan.c")
    with open(clash, "w", encoding="utf-8") as f:
        f.write(APP_WITH_VULKAN)
    for how, lib in (("shared", ["-L" + libdir, "-ldrdiff"]), ("static", [os.path.join(libdir, "libdrdiff.a")])):
        exe = os.path.join(work, "app-with-vulkan-" + how)
        run([cc, "-std=c11", "-Wall", "-Werror", "-I", os.path.join(prefix, "include"), "-o", exe, clash, *lib,
             "-lvulkan", "-lm", "-lpthread", "-ldl"], what=f"app with its own Vulkan calls, {how} build")
        r = run([exe], env=dict(os.environ, LD_LIBRARY_PATH=libdir), what=f"app with its own Vulkan calls, {how}")
        print(f"ok: an app calling libvulkan itself beside libdrdiff ({how}): {r.stdout.strip()}")
    cxx = os.path.join(work, "app.cpp")
    with open(cxx, "w", encoding="utf-8") as f:
        f.write(APP_CXX)
    exe = os.path.join(work, "app-cxx")
    run(["clang++", "-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I", os.path.join(prefix, "include"),
         "-o", exe, cxx, "-L" + libdir, "-ldrdiff"], what="C++ build")
    out = run([exe], env=dict(os.environ, LD_LIBRARY_PATH=libdir), what="C++ app").stdout.strip()
    if out != "invalid argument, ok":
        raise SystemExit(f"FAIL C++ app: printed {out!r}")
    print(f"ok: drdiff.h from C++ (clang++ -std=c++11): {out}")
    for how, (exe, _) in exes.items():
        linked = "libdrdiff.so" in run(["readelf", "-d", exe]).stdout
        if linked != how.endswith("shared"):
            raise SystemExit(f"FAIL {how}: libdrdiff.so {'is' if linked else 'is not'} among its libraries")
    return exes


def main():
    work = tempfile.mkdtemp(prefix="drdiff-install-")
    try:
        prefix = os.path.join(work, "prefix")
        run(["cmake", "--install", BUILD, "--prefix", prefix], what="cmake --install")
        libdir = os.path.dirname(glob.glob(os.path.join(prefix, "lib*", "**", "libdrdiff.a"), recursive=True)[0])
        for rel in ("bin/drdiff", "include/drdiff.h"):
            if not os.path.exists(os.path.join(prefix, rel)):
                raise SystemExit(f"FAIL: {rel} not installed")
        for rel in ("libdrdiff.so", "pkgconfig/drdiff.pc", "cmake/drdiff/drdiffConfig.cmake",
                    "cmake/drdiff/drdiffConfigVersion.cmake"):
            if not os.path.exists(os.path.join(libdir, rel)):
                raise SystemExit(f"FAIL: {rel} not installed in {libdir}")
        models = glob.glob(os.path.join(prefix, "share", "drdiff", "models", "*.gguf"))
        if not models:
            raise SystemExit("FAIL: no model installed in share/drdiff/models")
        check_shared_library(libdir)
        exes = build_samples(prefix, libdir, work)

        # a private pipeline cache, so that the test neither reads nor writes the user's
        env = dict(os.environ, DRDIFF_CACHE_DIR=os.path.join(work, "cache"))
        cli = os.path.join(prefix, "bin", "drdiff")
        backend = "vulkan" if subprocess.run([cli, "info"], capture_output=True, env=env).returncode == 0 else "cpu"
        want = run([cli, "generate", "--backend", backend, "-p", PROMPT, "-n", NEW, "--seed", SEED, "--no-progress"],
                   env=env, what="installed CLI").stdout
        if not want.startswith(PROMPT) or len(want.strip()) <= len(PROMPT):
            raise SystemExit(f"FAIL: the installed CLI printed {want!r}")
        for how, (exe, extra) in exes.items():
            r = run([exe, models[0], PROMPT, NEW, SEED], env=dict(env, **extra), what=how)
            if "validation" in r.stderr.lower():
                raise SystemExit(f"FAIL {how}: validation messages: {r.stderr[-600:]}")
            if r.stdout != want:
                raise SystemExit(f"FAIL {how}: printed {r.stdout!r}, the CLI ({backend}) {want!r}")
            print(f"ok: {how}: {r.stderr.strip().splitlines()[0]}")

        want_cpu = run([cli, "generate", "--backend", "cpu", "-p", PROMPT, "-n", NEW, "--seed", SEED, "--no-progress"],
                       env=env, what="installed CLI on the CPU").stdout
        exe, extra = exes["find_package shared"]
        nodrv = dict(env, **extra, VK_DRIVER_FILES=os.path.join(work, "no-such-icd.json"),
                     VK_ICD_FILENAMES=os.path.join(work, "no-such-icd.json"))
        r = run([exe, models[0], PROMPT, NEW, SEED], env=nodrv, what="no Vulkan driver")
        if "generating on the CPU" not in r.stderr or r.stdout != want_cpu:
            raise SystemExit(f"FAIL without a Vulkan driver: {r.stdout!r} (CPU CLI: {want_cpu!r}), {r.stderr[-400:]!r}")
        print("ok: without a Vulkan driver the sample falls back to the CPU engine")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
