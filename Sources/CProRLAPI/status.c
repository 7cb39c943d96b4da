/*
 * status.c — the C API's thread-local last-error message and status names
 * (the rest of the API is implemented in Swift, ProRLCAPI).
 */
#include "prorl.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char g_last_error[1024];

const char *prorl_last_error(void) { return g_last_error; }

/* Set by the Swift side (declared in prorl_internal.h); not exported. */
__attribute__((visibility("hidden"))) void prorl_set_last_error(const char *message) {
    if (!message) message = "";
    snprintf(g_last_error, sizeof g_last_error, "%s", message);
}

const char *prorl_status_name(prorl_status status) {
    switch (status) {
    case PRORL_OK: return "PRORL_OK";
    case PRORL_ERR_INVALID_ARGUMENT: return "PRORL_ERR_INVALID_ARGUMENT";
    case PRORL_ERR_NOT_FOUND: return "PRORL_ERR_NOT_FOUND";
    case PRORL_ERR_BAD_FILE: return "PRORL_ERR_BAD_FILE";
    case PRORL_ERR_INCOMPATIBLE: return "PRORL_ERR_INCOMPATIBLE";
    case PRORL_ERR_UNKNOWN_ITEM: return "PRORL_ERR_UNKNOWN_ITEM";
    case PRORL_ERR_BUFFER_TOO_SMALL: return "PRORL_ERR_BUFFER_TOO_SMALL";
    case PRORL_ERR_INTERNAL: return "PRORL_ERR_INTERNAL";
    case PRORL_ERR_BUSY: return "PRORL_ERR_BUSY";
    case PRORL_ERR_DIVERGED: return "PRORL_ERR_DIVERGED";
    case PRORL_STOPPED: return "PRORL_STOPPED";
    case PRORL_ERR_DISTRIBUTED: return "PRORL_ERR_DISTRIBUTED";
    }
    return "PRORL_ERR_UNKNOWN_STATUS";
}

int prorl_abi_version(void) { return PRORL_ABI_VERSION; }
