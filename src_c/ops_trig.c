/* Elementwise cosine and sine with their VJPs (cos' = -sin, sin' = cos),
 * through the unary-op macro of csvi_unary.h. */
#include <math.h>
#include "csvi_unary.h"

DEFINE_UNARY_HOT(cos, CSVI_PAR_TRANSCENDENTAL, cos(x), -sin(x))
DEFINE_UNARY_HOT(sin, CSVI_PAR_TRANSCENDENTAL, sin(x), cos(x))
