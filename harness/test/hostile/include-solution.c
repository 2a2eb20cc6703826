/* The instructor's solution, compiled in.
 * expect: did not compile */
#include "../../solutions/01-matmul/matmul.c"
