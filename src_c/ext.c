/* The table of SciPy functions, filled by csvi/_core.pyx at import. */
#include "csvi_ext.h"

csvi_ext_table csvi_ext;
