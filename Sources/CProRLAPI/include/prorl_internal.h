/* prorl_internal.h — between the C and Swift halves of libprorl; not installed. */
#ifndef PRORL_INTERNAL_H
#define PRORL_INTERNAL_H
#include "prorl.h"
void prorl_set_last_error(const char *message);
#endif
