"""Builds csvi's one extension module, csvi._core, from csvi/_core.pyx and the
plain-C kernels in src_c/.

NumPy's random C API lives in static libraries (npyrandom, npymath) inside the
NumPy package; without them the build succeeds and `import` fails with an
undefined symbol, so they are linked explicitly.  On x86-64 Linux, glibc's
libmvec supplies vectorized exp/log/log1p.  CSVI_SANITIZE=1 builds with
AddressSanitizer and UBSan for checking the C code.
"""
import glob
import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

numpy_dir = os.path.dirname(np.__file__)
numpy_libs = [os.path.join(numpy_dir, "random", "lib"), os.path.join(numpy_dir, "_core", "lib")]

compile_args = ["-O3", "-fno-math-errno", "-Wno-unused-function"]
link_args = []
libraries = ["npyrandom", "npymath", "m"]
if sys.platform.startswith("linux") and platform.machine() == "x86_64":
    # glibc's vector math (libmvec) for loops marked CSVI_SIMD (src_c/csvi_vmath.h)
    compile_args += ["-fopenmp-simd", "-DCSVI_LIBMVEC"]
    libraries.insert(0, "mvec")
if os.name == "posix":
    # the kernels' worker threads (src_c/parallel.c)
    compile_args += ["-pthread"]
    link_args += ["-pthread"]
if os.environ.get("CSVI_SANITIZE"):
    # target_clones' IFUNC resolvers would run before the sanitizers start
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
    compile_args += ["-DCSVI_NO_CLONES"]
    compile_args += flags
    link_args += flags

core = Extension(
    "csvi._core",
    sources=["csvi/_core.pyx"] + sorted(glob.glob("src_c/*.c")),
    include_dirs=[np.get_include(), "src_c"],
    library_dirs=numpy_libs,
    libraries=libraries,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    depends=sorted(glob.glob("src_c/*.h") + glob.glob("src_c/*.def") + glob.glob("csvi/*.pxi")),
)

setup(ext_modules=cythonize([core], language_level=3))
