#include "cspshim.h"
extern "C" int cspshim_version(void) { return 1; }
