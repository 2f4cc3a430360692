"""The C package in users' build systems (issue 14): several models in one program.

Three compiled DIRs: `a` (KWS, tflm), `b` (ResNet-8, litert), `c` (ResNet-8, tflm). So the
program links two numerics profiles (kernel symbols ef_tflm_* and ef_litert_*) and a tflm
kernel set that is the union of a's and c's. Built with CMake (add_subdirectory of each DIR)
for the host with gcc and for QEMU mps2-an386 with arm-none-eabi-gcc, and with the Makefile
fragments; every output is byte-equal to edgeforge.runtime.reference.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.qmath import dequantize, quantize
from edgeforge.runtime.reference import run
from tests.conftest import ROOT, fixture, require

MODELS = {"a": ("kws_ds_cnn_int8.tflite", "tflm"), "b": ("ic_resnet8_int8.tflite", "litert"),
          "c": ("ic_resnet8_int8.tflite", "tflm")}
TEMPLATE = ROOT / "firmware_templates" / "cortex-m"

MAIN_C = r"""
#include <stdint.h>
#include <string.h>
#include "a.h"
#include "b.h"
#include "c.h"
#include "inputs.h"

#ifdef __arm__
#include "ef_uart.h"
static void put(char ch) { ef_uart_putc((uint8_t)ch); }
static void bye(void)
{   /* semihosting SYS_EXIT, ADP_Stopped_ApplicationExit: QEMU exits */
    register uint32_t r0 __asm("r0") = 0x18u;
    register uint32_t r1 __asm("r1") = 0x20026u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}
#else
#include <stdio.h>
static void put(char ch) { putchar(ch); }
static void bye(void) {}
#endif

static void hex(const char *tag, const void *p, int32_t n)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = (const uint8_t *)p;
    while (*tag) put(*tag++);
    put(' ');
    for (int32_t k = 0; k < n; ++k) {
        put(digits[b[k] >> 4]);
        put(digits[b[k] & 15]);
    }
    put('\n');
}

static float fbuf[EF_A_INPUT0_BYTES];

int main(void)
{
#ifdef __arm__
    ef_uart_init(25000000u, 115200u);
#endif
    memcpy(ef_a_input(0), in_a, sizeof in_a);
    memcpy(ef_b_input(0), in_b, sizeof in_b);
    memcpy(ef_c_input(0), in_c, sizeof in_c);
    if (ef_a_invoke() || ef_b_invoke() || ef_c_invoke()) hex("fail", "", 0);
    hex("a", ef_a_output(0), EF_A_OUTPUT0_BYTES);
    hex("b", ef_b_output(0), EF_B_OUTPUT0_BYTES);
    hex("c", ef_c_output(0), EF_C_OUTPUT0_BYTES);
    /* the float helpers: quantize floats into a's input, dequantize a's output */
    ef_a_input_from_float(0, fx_a, EF_A_INPUT0_BYTES);
    hex("qa", ef_a_input(0), EF_A_INPUT0_BYTES);
    ef_a_output_to_float(0, fbuf, EF_A_OUTPUT0_BYTES);
    hex("fa", fbuf, EF_A_OUTPUT0_BYTES * 4);
    hex("end", "", 0);
    bye();
    return 0;
}
"""

PROJECT = """cmake_minimum_required(VERSION 3.13)
project(two_models C)
add_subdirectory({a} a)
add_subdirectory({b} b)
add_subdirectory({c} c)
add_executable(app main.c {arm_sources})
target_link_libraries(app PRIVATE edgeforge::a edgeforge::b edgeforge::c)
{extra}
"""

ARM_TOOLCHAIN = """set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
-ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostartfiles --specs=nano.specs --specs=nosys.specs \
-Wl,--gc-sections")
"""


def _c_array(name: str, data: np.ndarray, ctype: str) -> str:
    flat = data.ravel()
    vals = ", ".join(repr(float(v)) + "f" if ctype == "float" else str(int(v)) for v in flat)
    return f"static const {ctype} {name}[{flat.size}] = {{{vals}}};\n"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Compile the three DIRs; inputs, and the reference's outputs for them."""
    root = tmp_path_factory.mktemp("pkg")
    rng = np.random.default_rng(14)
    out = {"root": root, "inputs": {}, "expect": {}}
    for name, (model, numerics) in MODELS.items():
        d = root / name
        compile_model(fixture(model), d, name=name, numerics=numerics)
        g = load(d / "model.tflite")
        t = g.tensors[g.inputs[0]]
        x = rng.integers(-128, 128, size=t.shape).astype(np.int8)
        out["inputs"][name] = x
        out["expect"][name] = run(g, [x], numerics=numerics)[g.outputs[0]]
        out[name] = d
    # float data for a's input, with a few exact .5 ties and out-of-range values
    man = json.loads((root / "a" / "manifest.json").read_text())
    spec, ospec = man["inputs"][0], man["outputs"][0]
    fx = (rng.standard_normal(int(np.prod(spec["shape"]))) * 60 * spec["scale"]).astype(np.float32)
    fx[:8] = (np.array([0.5, -0.5, 1.5, -2.5, 200, -300, 0, 127.5]) * spec["scale"]
              ).astype(np.float32)
    out["fx"], out["in_spec"], out["out_spec"] = fx, spec, ospec
    return out


def _write_project(dirs, proj: Path, arm: bool) -> None:
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "main.c").write_text(MAIN_C)
    (proj / "inputs.h").write_text(
        "".join(_c_array(f"in_{n}", dirs["inputs"][n], "int8_t") for n in MODELS)
        + _c_array("fx_a", dirs["fx"], "float"))
    arm_sources = ""
    if arm:
        from edgeforge.targets.build import _linker_script, load_board
        board = load_board("mps2-an386")
        (proj / "link.ld").write_text(_linker_script(TEMPLATE, board, board.flash["size"],
                                                     board.ram["size"]))
        (proj / "arm.cmake").write_text(ARM_TOOLCHAIN)
        arm_sources = f"{TEMPLATE}/startup.c {TEMPLATE}/ef_uart_cmsdk.c"
        extra = (f"target_include_directories(app PRIVATE {TEMPLATE})\n"
                 "target_link_options(app PRIVATE -T${CMAKE_SOURCE_DIR}/link.ld)")
    else:     # the README's example program (printf) on the host
        extra = (f"add_executable(example {dirs['a'] / 'c'}/examples/main.c)\n"
                 "target_link_libraries(example PRIVATE edgeforge::a)")
    (proj / "CMakeLists.txt").write_text(PROJECT.format(
        a=dirs["a"] / "c", b=dirs["b"] / "c", c=dirs["c"] / "c",
        arm_sources=arm_sources, extra=extra))


def _cmake_build(proj: Path, arm: bool) -> Path:
    build = proj / "build"
    cfg = ["cmake", "-S", str(proj), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    if arm:
        cfg.append(f"-DCMAKE_TOOLCHAIN_FILE={proj / 'arm.cmake'}")
    r = subprocess.run(cfg, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True,
                       text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stdout.lower() + r.stderr.lower(), r.stdout + r.stderr
    return build


def _lines(text: str) -> dict[str, bytes]:
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if parts and parts[0] in ("a", "b", "c", "qa", "fa", "end", "fail"):
            out[parts[0]] = bytes.fromhex(parts[1] if len(parts) > 1 else "")
    return out


def _check_outputs(dirs, got: dict[str, bytes]) -> None:
    assert "fail" not in got and "end" in got, got
    for n in MODELS:
        assert got[n] == dirs["expect"][n].astype(np.int8).tobytes(), n
    s, o = dirs["in_spec"], dirs["out_spec"]
    assert got["qa"] == quantize(dirs["fx"], s["scale"], s["zero_point"]).tobytes()
    ya = dirs["expect"]["a"].ravel()
    want = dequantize(ya, np.float32(o["scale"]), o["zero_point"]).astype("<f4").tobytes()
    assert got["fa"] == want


def _kernel_library_checks(build: Path, dirs) -> None:
    """Each profile's kernels are compiled once, as the union; every symbol is namespaced."""
    libs = {p.name: p for p in build.rglob("libedgeforge_kernels_*.a")}
    assert set(libs) == {"libedgeforge_kernels_tflm.a", "libedgeforge_kernels_litert.a"}
    tool = "arm-none-eabi-nm" if (build.parent / "arm.cmake").exists() else "nm"

    def kfiles(name: str) -> set[str]:
        files = json.loads((dirs[name] / "report.json").read_text())["c"]["files"]
        return {f for f in files if f.endswith(".c") and f not in ("model.c", "weights.c")}

    for profile, names in (("tflm", ("a", "c")), ("litert", ("b",))):
        lib = libs[f"libedgeforge_kernels_{profile}.a"]
        members = subprocess.run(["ar", "t", str(lib)], capture_output=True, text=True,
                                 check=True).stdout.split()
        stems = [Path(m).name.split(".")[0] for m in members]
        assert len(stems) == len(set(stems))                       # each file compiled once
        assert set(stems) == {Path(f).stem for n in names for f in kfiles(n)}   # the union
        syms = subprocess.run([tool, "-g", "--defined-only", str(lib)], capture_output=True,
                              text=True, check=True).stdout
        defined = re.findall(r" [TDRB] (\w+)", syms)
        assert defined and all(s.startswith(f"ef_{profile}_") for s in defined), defined
    for n in MODELS:              # each model's own library: only ef_<name>_* symbols
        [lib] = build.rglob(f"libef_{n}.a")
        syms = subprocess.run([tool, "-g", "--defined-only", str(lib)], capture_output=True,
                              text=True, check=True).stdout
        defined = re.findall(r" [TDRB] (\w+)", syms)
        assert f"ef_{n}_invoke" in defined and all(s.startswith(f"ef_{n}_") for s in defined)


def test_two_profiles_three_models_cmake_host(dirs, tmp_path):
    require("cmake", "gcc")
    _write_project(dirs, tmp_path / "host", arm=False)
    build = _cmake_build(tmp_path / "host", arm=False)
    _kernel_library_checks(build, dirs)
    r = subprocess.run([str(build / "app")], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    _check_outputs(dirs, _lines(r.stdout))
    # the README's example program: zeros in, outputs printed as int8(float)
    r = subprocess.run([str(build / "example")], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0 and r.stdout.startswith("output 0:"), r.stdout + r.stderr


def test_two_profiles_three_models_cmake_arm_on_qemu(dirs, tmp_path):
    require("cmake", "arm-none-eabi-gcc", "qemu-system-arm")
    _write_project(dirs, tmp_path / "arm", arm=True)
    build = _cmake_build(tmp_path / "arm", arm=True)
    _kernel_library_checks(build, dirs)
    r = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                        "-semihosting-config", "enable=on,target=native",
                        "-kernel", str(build / "app")],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    _check_outputs(dirs, _lines(r.stdout.decode(errors="replace")))


def test_makefile_fragments_link_three_models(dirs, tmp_path):
    require("make", "gcc")
    proj = tmp_path / "mk"
    _write_project(dirs, proj, arm=False)
    (proj / "Makefile").write_text(
        "".join(f"include {dirs[n] / 'c' / 'edgeforge.mk'}\n" for n in MODELS)
        + "app: main.c $(EF_SRCS)\n\t$(CC) -std=c99 -O2 -Wall $(EF_CFLAGS) -I. $^ -o $@\n")
    r = subprocess.run(["make", "-C", str(proj), "app"], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    kernels = [s for s in r.stdout.split() if s.endswith("_s8.c")]
    assert len({Path(k).name for k in kernels if "/b/" not in k}) == len(
        [k for k in kernels if "/b/" not in k])                    # tflm union: once each
    r = subprocess.run([str(proj / "app")], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    _check_outputs(dirs, _lines(r.stdout))


def test_cmake_refuses_two_models_with_one_name(dirs, tmp_path):
    require("cmake", "gcc")
    twin = tmp_path / "twin"
    shutil.copytree(dirs["a"], twin)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "CMakeLists.txt").write_text(
        f"cmake_minimum_required(VERSION 3.13)\nproject(p C)\n"
        f"add_subdirectory({dirs['a'] / 'c'} a)\nadd_subdirectory({twin / 'c'} twin)\n")
    r = subprocess.run(["cmake", "-S", str(proj), "-B", str(proj / "b")], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode != 0
    assert "a model named 'a' is already in this build" in " ".join(r.stderr.split())


def test_header_names_and_prefixes(dirs):
    c = dirs["a"] / "c"
    api = (c / "a.h").read_text()
    for sym in ("int ef_a_invoke(void);", "int8_t *ef_a_input(int i);",
                "int8_t *ef_a_output(int i);", "#define EF_A_ARENA_SIZE",
                "ef_a_input_from_float(", "ef_a_output_to_float("):
        assert sym in api
    assert "EF_MODEL_INVOKE" not in api                  # the one-model glue is model.h's
    assert '#include "a.h"' in (c / "model.h").read_text()
    assert '#include "a.h"' in (c / "model.c").read_text()
    # exported symbols of model.c / weights.c: only ef_a_*
    for f in ("model.c", "weights.c"):
        text = (c / f).read_text()
        for decl in re.findall(r"^(?:int|int8_t \*|uint8_t \*|void|const \w+) (ef_\w+)", text,
                               re.MULTILINE):
            assert decl.startswith("ef_a_"), decl


def test_build_files_follow_their_documented_formats(dirs):
    c = dirs["a"] / "c"
    # Zephyr module.yml: build.cmake is the folder (from the module root) with CMakeLists.txt,
    # build.kconfig the Kconfig file; Kconfig: a bool config symbol with a prompt and help
    # (the fields of Zephyr's module.yml schema, scripts/zephyr_module.py, that we use; Zephyr
    # looks for <build.cmake>/CMakeLists.txt and <build.kconfig> under the module root)
    require("jsonschema", "kconfiglib")
    import jsonschema
    import kconfiglib
    mod = yaml.safe_load((c / "zephyr" / "module.yml").read_text())
    jsonschema.validate(mod, {
        "type": "object", "additionalProperties": False,
        "properties": {"name": {"type": "string"},
                       "build": {"type": "object", "additionalProperties": False,
                                 "properties": {"cmake": {"type": "string"},
                                                "kconfig": {"type": "string"}}}}})
    assert mod["name"] == "ef_a" and set(mod["build"]) == {"cmake", "kconfig"}
    assert (c / mod["build"]["cmake"] / "CMakeLists.txt").is_file()
    assert (c / mod["build"]["kconfig"]).is_file()
    k = kconfiglib.Kconfig(str(c / mod["build"]["kconfig"]), warn_to_stderr=False)
    sym = k.syms["EF_A"]
    assert not k.warnings and sym.type == kconfiglib.BOOL and sym.str_value == "y"
    assert sym.nodes[0].prompt[0] == "edgeforge model a" and sym.nodes[0].help
    assert "if(CONFIG_EF_A)" in (c / "zephyr" / "CMakeLists.txt").read_text()
    # PlatformIO library.json: name (a-z, digits, dashes; <= 50), SemVer version (<= 20),
    # description (<= 255), build.srcDir/srcFilter/includeDir/flags/libArchive
    lib = json.loads((c / "library.json").read_text())
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", lib["name"]) and len(lib["name"]) <= 50
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+.][0-9A-Za-z.-]+)?", lib["version"])
    assert len(lib["version"]) <= 20 and 0 < len(lib["description"]) <= 255
    assert set(lib["build"]) <= {"srcDir", "srcFilter", "includeDir", "flags", "libArchive",
                                 "unflags", "extraScript", "libLDFMode", "libCompatMode"}
    assert (c / lib["build"]["includeDir"] / lib["headers"]).is_file()
    # Arduino library.properties (1.5 format, rev 2.2): required fields, name characters,
    # category from the allowed list, src/ layout, examples/<name>/<name>.ino
    ard = dirs["a"] / "arduino" / "ef_a"
    props = dict(line.split("=", 1) for line in
                 (ard / "library.properties").read_text().splitlines() if line)
    for key in ("name", "version", "author", "maintainer", "sentence", "paragraph",
                "category", "url", "architectures"):
        assert props.get(key), key
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9 _.\-]*", props["name"])
    assert len(props["name"]) <= 63
    assert props["category"] in ("Display", "Communication", "Signal Input/Output", "Sensors",
                                 "Device Control", "Timing", "Data Storage", "Data Processing",
                                 "Other")
    assert props["dot_a_linkage"] in ("true", "false")
    assert (ard / "src" / props["includes"]).is_file() and (ard / "src" / "model.c").is_file()
    assert (ard / "examples" / "ef_a" / "ef_a.ino").is_file()
    assert "#define EF_NAMESPACE_KERNELS 1" in (ard / "src" / "ef_kernels.h").read_text()
    readme = (c / "README.md").read_text()
    assert "Several models in one program" in readme and "edgeforge::a" in readme


def test_arduino_library_compiles_as_one_archive_per_model(dirs, tmp_path):
    """What dot_a_linkage does: each library an archive. Two libraries of one profile carry
    identical kernel objects; the linker takes one copy and the sketch links."""
    require("gcc", "ar")
    objs: dict[str, Path] = {}
    for n in ("a", "c"):
        src = dirs[n] / "arduino" / f"ef_{n}" / "src"
        o = tmp_path / n
        o.mkdir()
        files = sorted(src.glob("*.c"))
        r = subprocess.run(["gcc", "-std=c99", "-O1", "-c", f"-I{src}", *map(str, files)],
                           cwd=o, capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr
        objs[n] = tmp_path / f"lib{n}.a"
        subprocess.run(["ar", "rcs", str(objs[n]), *map(str, sorted(o.glob("*.o")))],
                       check=True, timeout=60)
    (tmp_path / "m.c").write_text('#include "a.h"\n#include "c.h"\n'
                                  "int main(void){return ef_a_invoke() | ef_c_invoke();}\n")
    r = subprocess.run(["gcc", "-std=c99", f"-I{dirs['a'] / 'arduino/ef_a/src'}",
                        f"-I{dirs['c'] / 'arduino/ef_c/src'}", str(tmp_path / "m.c"),
                        str(objs["a"]), str(objs["c"]), "-o", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(tmp_path / "m")], timeout=60, check=False).returncode == 0


ZEPHYR_STANDINS = """# Zephyr's library extension functions as cmake/modules/extensions.cmake documents them
# (no Zephyr SDK here): a named static library becomes the current one, and the other
# calls add to it; zephyr_include_directories adds to zephyr_interface, which all link.
add_library(zephyr_interface INTERFACE)
macro(zephyr_library_named name)
  set(ZEPHYR_CURRENT_LIBRARY ${name})
  add_library(${name} STATIC)
  target_link_libraries(${name} PUBLIC zephyr_interface)
  set_property(GLOBAL APPEND PROPERTY ZEPHYR_LIBS ${name})
endmacro()
function(zephyr_library_sources)
  target_sources(${ZEPHYR_CURRENT_LIBRARY} PRIVATE ${ARGN})
endfunction()
function(zephyr_library_compile_definitions)
  target_compile_definitions(${ZEPHYR_CURRENT_LIBRARY} PRIVATE ${ARGN})
endfunction()
function(zephyr_include_directories)
  target_include_directories(zephyr_interface INTERFACE ${ARGN})
endfunction()
"""


def test_zephyr_module_cmake_builds_three_models(dirs, tmp_path):
    """The module's CMakeLists under Zephyr's library functions: three modules, one kernel
    library per profile (the union), linked whole-archive as Zephyr links its libraries."""
    require("cmake", "gcc")
    proj = tmp_path / "z"
    _write_project(dirs, proj, arm=False)
    adds = "".join(f"set(CONFIG_EF_{n.upper()} y)\nadd_subdirectory({dirs[n] / 'c' / 'zephyr'} "
                   f"zephyr_{n})\n" for n in MODELS)
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(z C)\n" + ZEPHYR_STANDINS + adds
        + "get_property(libs GLOBAL PROPERTY ZEPHYR_LIBS)\nadd_executable(app main.c)\n"
        "target_link_libraries(app PRIVATE zephyr_interface -Wl,--whole-archive ${libs} "
        "-Wl,--no-whole-archive)\n")
    build = _cmake_build(proj, arm=False)
    _kernel_library_checks(build, dirs)
    r = subprocess.run([str(build / "app")], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    _check_outputs(dirs, _lines(r.stdout))


def test_header_and_example_are_warning_free_in_c_and_cpp(dirs, tmp_path):
    """NAME.h (its inline float helpers included) under strict C99 and C++ warnings."""
    require("gcc", "g++")
    c = dirs["a"] / "c"
    strict = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror", "-O2"]
    r = subprocess.run(["gcc", "-std=c99", *strict, f"-I{c}", *map(str, sorted(c.glob("*.c"))),
                        str(c / "examples" / "main.c"), "-o", str(tmp_path / "ex")],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    (tmp_path / "m.cpp").write_text(
        '#include "a.h"\nint main() { float x[EF_A_INPUT0_BYTES] = {0}, y[EF_A_OUTPUT0_BYTES];\n'
        "  ef_a_input_from_float(0, x, EF_A_INPUT0_BYTES);\n  int rc = ef_a_invoke();\n"
        "  ef_a_output_to_float(0, y, EF_A_OUTPUT0_BYTES);\n  return rc; }\n")
    r = subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                        f"-I{c}", "-c", str(tmp_path / "m.cpp"), "-o", str(tmp_path / "m.o")],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
