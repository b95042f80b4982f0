#include "cimageshim.h"
int cimageshim_version(void) { return 1; }
