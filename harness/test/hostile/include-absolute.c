/* The instructor's solution, by its absolute path in the kit.
 * expect: did not compile */
#include "@KIT@/solutions/01-matmul/matmul.c"
