/* The BLAS table, filled by csvi/_ext.pxi before its first use. */
#include "csvi_ext.h"

csvi_ext_table csvi_ext;
