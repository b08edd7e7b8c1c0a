"""Builds the `mess` extension with CMake and packages it (pyproject.toml says how to call it).

The extension is built in the checkout's build directory (the release preset, `build/`; MESS_BUILD_DIR and
MESS_CMAKE_PRESET choose others) with the Python that runs pip, so the libraries a developer already built are
reused rather than compiled twice. Nothing is downloaded.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def version():
    text = (ROOT / "CMakeLists.txt").read_text()
    return re.search(r"project\(mess VERSION ([0-9.]+)", text).group(1)


def configured_python(build):
    """The interpreter `build` was configured with (None when it is not configured)."""
    cache = build / "CMakeCache.txt"
    if not cache.exists():
        return None
    found = re.search(r"^Python_EXECUTABLE:[A-Z]+=(.*)$", cache.read_text(), re.MULTILINE)
    return found.group(1) if found else None


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        preset = os.environ.get("MESS_CMAKE_PRESET", "release")
        build = Path(os.environ.get("MESS_BUILD_DIR", ROOT / "build"))
        configure = ["cmake", "--preset", preset, "-B", str(build), "-DMESS_PYTHON=ON"]
        ours, theirs = os.path.realpath(sys.executable), configured_python(build)
        if theirs is None or os.path.realpath(theirs) != ours:  # a venv over the same Python leaves the tree as it is
            configure.append(f"-DPython_EXECUTABLE={ours}")
        subprocess.run(configure, cwd=ROOT, check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "mess_python"], cwd=ROOT, check=True)
        built = build / "python" / "mess" / ("_mess" + sysconfig.get_config_var("EXT_SUFFIX"))
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(
    version=version(),
    packages=["mess"],
    package_data={"mess": ["__init__.pyi", "py.typed"]},
    ext_modules=[Extension("mess._mess", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
