/*
 * prorl.h — the C embedding API of the ProRL engine (libprorl).
 *
 * Load a trained run, generate guidance paths toward a target for a user's
 * history, score paths with the user simulator, map item ids to titles, and
 * continue training a run. C99; also compiles as C++.
 *
 * Conventions
 *   - Handles are opaque. Every `*_load`/`*_open` has a `*_free`; `*_free`
 *     accepts NULL.
 *   - Every fallible call returns a prorl_status; results come back through
 *     out pointers and caller-owned buffers. When a buffer is too small the
 *     call returns PRORL_ERR_BUFFER_TOO_SMALL and sets the `*_needed` out
 *     parameter; call again with a larger buffer.
 *   - On failure, prorl_last_error() describes what went wrong in one line
 *     (which file, which argument, what was expected). It is thread-local
 *     and valid until the next call on the same thread.
 *   - Structs start with `struct_size`, the sizeof() the caller compiled
 *     (the `*_default_params()` functions set it; set it yourself for the
 *     out-struct prorl_train_stats). A struct only ever grows by appending
 *     fields, and the library accepts every size the struct has had: it
 *     reads only the fields the caller's size covers (the others keep their
 *     defaults) and writes only that much of an out-struct. Any other size
 *     is PRORL_ERR_INVALID_ARGUMENT. Integer fields have fixed widths.
 *   - Items are named by their raw ids (the strings of the data files).
 *     Strings the library returns belong to the handle they came from and
 *     stay valid until it is freed.
 *   - Nothing aborts on bad input: NULL handles, wrong lengths, unknown
 *     ids, missing files and checkpoints of the wrong kind return a status.
 *
 * Thread safety
 *   A handle may be used by one thread at a time. Different handles may be
 *   used from different threads at once; each call runs the numeric kernels
 *   with its handle's thread count. Concurrent calls share the kernels'
 *   matrix-product buffers, so they take turns inside matrix products.
 */
#ifndef PRORL_H
#define PRORL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function of the API is PRORL_API; nothing else of the library is
 * exported (libprorl.so is linked with a version script). */
#if defined(_WIN32)
#define PRORL_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define PRORL_API __attribute__((visibility("default")))
#else
#define PRORL_API
#endif

/** ABI version of this header; prorl_abi_version() of the library must match.
 *  Still 1: later additions only append (functions, statuses, struct fields). */
#define PRORL_ABI_VERSION 1

typedef enum prorl_status {
    PRORL_OK = 0,
    PRORL_ERR_INVALID_ARGUMENT = 1, /**< a NULL handle or pointer, a bad length or parameter */
    PRORL_ERR_NOT_FOUND = 2,        /**< a file or directory does not exist */
    PRORL_ERR_BAD_FILE = 3,         /**< a malformed file, or a checkpoint of the wrong kind */
    PRORL_ERR_INCOMPATIBLE = 4,     /**< files that do not belong together (their items differ) */
    PRORL_ERR_UNKNOWN_ITEM = 5,     /**< an item id the model does not know */
    PRORL_ERR_BUFFER_TOO_SMALL = 6, /**< a caller buffer is too small; see the `*_needed` out value */
    PRORL_ERR_INTERNAL = 7,         /**< anything else (a bug: please report it) */
    PRORL_ERR_BUSY = 8,             /**< a run directory another trainer (process or handle) holds */
    PRORL_ERR_DIVERGED = 9,         /**< training stopped on a non-finite loss or gradient; checkpoints are the last good ones */
    PRORL_STOPPED = 10,             /**< not an error: the progress callback asked prorl_trainer_step to stop */
    PRORL_ERR_DISTRIBUTED = 11      /**< a data-parallel (MPI) run failed: a collective, or ranks that disagree (the CLI's `mpirun` runs) */
} prorl_status;

/** Library version, e.g. "0.1.0". */
PRORL_API const char *prorl_version(void);
/** ABI version of the library (compare with PRORL_ABI_VERSION). */
PRORL_API int prorl_abi_version(void);
/** Name of a status ("PRORL_OK", ...). */
PRORL_API const char *prorl_status_name(prorl_status status);
/** Message of the last failed call on this thread ("" if none). */
PRORL_API const char *prorl_last_error(void);

typedef enum prorl_log_level {
    PRORL_LOG_INFO = 0,   /**< what a run did: a validation, a checkpoint */
    PRORL_LOG_WARNING = 1 /**< something a caller may want to know about */
} prorl_log_level;

/** Receives the library's messages (one line, no newline; valid during the call). */
typedef void (*prorl_log_fn)(int32_t level, const char *message, void *user_data);

/**
 * Where the library's messages go, process-wide; NULL (the default): nowhere.
 * The library never prints to stdout or stderr itself.
 */
PRORL_API void prorl_set_log_callback(prorl_log_fn fn, void *user_data);

/* ------------------------------------------------------------------ */
/* Models: a policy, the simulator and the item catalogue              */
/* ------------------------------------------------------------------ */

typedef struct prorl_model prorl_model;

typedef struct prorl_model_params {
    size_t struct_size; /**< sizeof(prorl_model_params) */
    int32_t n_threads;  /**< kernel threads for this handle's calls; 0: one per core; at most 1024 */
} prorl_model_params;

/** Fills `params` with the defaults (and its struct_size). */
PRORL_API void prorl_model_default_params(prorl_model_params *params);

/**
 * Loads an RL run directory (as `prorl train` or `prorl demo` writes it):
 * its best policy, and the simulator and catalogue its config names.
 * `params` may be NULL (defaults).
 */
PRORL_API prorl_status prorl_model_load_run(const char *run_dir, const prorl_model_params *params, prorl_model **out);

/**
 * Loads a policy and a simulator checkpoint; `catalog_path` (a tasks
 * directory's catalog.json, for titles) may be NULL. The three must name
 * the same items. `params` may be NULL.
 */
PRORL_API prorl_status prorl_model_load(const char *policy_path, const char *simulator_path, const char *catalog_path,
                              const prorl_model_params *params, prorl_model **out);

/** Frees a model (NULL is fine). */
PRORL_API void prorl_model_free(prorl_model *model);

/** Kernel threads for this handle's calls (0: one per core; 0…1024, else PRORL_ERR_INVALID_ARGUMENT). */
PRORL_API prorl_status prorl_model_set_threads(prorl_model *model, int n_threads);

/** Number of items the model knows. */
PRORL_API prorl_status prorl_model_item_count(const prorl_model *model, size_t *count);

/** Raw id of item `index` (0 ≤ index < item count). */
PRORL_API prorl_status prorl_model_item_id(const prorl_model *model, size_t index, const char **item_id);

/** Title of an item (its raw id when the catalogue has none). */
PRORL_API prorl_status prorl_model_item_title(const prorl_model *model, const char *item_id, const char **title);

/* ------------------------------------------------------------------ */
/* Generating and scoring paths                                        */
/* ------------------------------------------------------------------ */

typedef enum prorl_decoding {
    PRORL_DECODE_BEAM = 0,  /**< beam search: the n_paths best paths */
    PRORL_DECODE_SAMPLE = 1 /**< n_paths independent samples */
} prorl_decoding;

typedef struct prorl_generate_params {
    size_t struct_size;   /**< sizeof(prorl_generate_params) */
    int32_t decoding;     /**< a prorl_decoding; default PRORL_DECODE_BEAM */
    int32_t n_paths;      /**< paths returned (beams or samples), 1…64; default 3 */
    int32_t max_items;    /**< most items per path, 1…50; default 10 */
    int32_t constrained;  /**< nonzero: only valid items (default 1) */
    float temperature;    /**< sampling temperature, finite and > 0; default 1 */
    int32_t top_k;        /**< sampling: keep the k likeliest tokens (0: all) */
    float top_p;          /**< sampling: nucleus mass (1: all) */
    uint64_t seed;        /**< sampling seed */
    int32_t no_repeats;   /**< nonzero: a path never repeats one of its items (needs constrained, else
                               PRORL_ERR_INVALID_ARGUMENT). Default 1, as the engine's: a platform does
                               not recommend one item twice in a path. Added after ABI 1.0: callers
                               built without it (the shorter struct) keep 1.0's behaviour, repeats allowed. */
} prorl_generate_params;

/** Fills `params` with the defaults (and its struct_size). */
PRORL_API void prorl_generate_default_params(prorl_generate_params *params);

/**
 * Generates paths from `history` (n_history raw ids, oldest first) toward
 * `target`. Path k's items are written back to back into `items` (pointers
 * owned by the model; NULL for a tuple that names no item, possible only
 * without the constraint): path 0 first, `path_lengths[k]` items each;
 * `path_scores` (may be NULL) receives each path's score (beam: log-prob
 * per token; sampling: log-prob). `path_lengths` and `path_scores` need
 * room for params->n_paths. `*n_paths` receives the number of paths,
 * `*items_needed` (may be NULL) the number of items written or needed.
 * `params` may be NULL (defaults). Histories (and paths) of more than
 * 4096 items are refused with PRORL_ERR_INVALID_ARGUMENT.
 */
PRORL_API prorl_status prorl_generate(prorl_model *model, const char *const *history, size_t n_history, const char *target,
                            const prorl_generate_params *params, const char **items, size_t items_capacity,
                            size_t *path_lengths, float *path_scores, size_t *n_paths, size_t *items_needed);

/** The simulator's view of one step of a path (step 0: the history alone). */
typedef struct prorl_step_score {
    double ctr;             /**< acceptance of this step's item; NAN at step 0 */
    double log_p_target;    /**< log p(target) after this step */
    int64_t rank_target;    /**< rank of the target after this step (1 = first) */
    double policy_log_prob; /**< the policy's log-prob of this step's item; NAN at step 0 */
} prorl_step_score;

/** A whole path: IoI = Δ log p(target), IoR = Δ rank, mean CTR. */
typedef struct prorl_path_score {
    double ioi;
    double ior;
    double mean_ctr;
} prorl_path_score;

/**
 * Scores `path` (n_path raw ids) after `history` toward `target`: one
 * prorl_step_score per step into `steps` (needs n_path + 1 entries; may be
 * NULL if `total` is enough), and the path values into `total` (may be NULL).
 */
PRORL_API prorl_status prorl_score_path(prorl_model *model, const char *const *history, size_t n_history, const char *target,
                              const char *const *path, size_t n_path, prorl_step_score *steps, size_t steps_capacity,
                              prorl_path_score *total);

/* ------------------------------------------------------------------ */
/* Training                                                            */
/* ------------------------------------------------------------------ */

typedef struct prorl_trainer prorl_trainer;

/** What the last RL step did. */
typedef struct prorl_train_stats {
    size_t struct_size; /**< sizeof(prorl_train_stats); set it before the call */
    int64_t step;       /**< steps done */
    double length;      /**< mean path length of the rollouts */
    double path_reward; /**< mean path reward (the algorithm's units) */
    double path_ioi;    /**< mean path IoI from the simulator */
    double path_ctr;    /**< mean path CTR from the simulator */
    double kl;          /**< KL to the pretrained policy, per rollout */
    double seconds;     /**< wall time of the step */
} prorl_train_stats;

/**
 * Opens an RL run directory (created by `prorl train`) to continue training
 * it from its last checkpoint. `params` may be NULL.
 */
PRORL_API prorl_status prorl_trainer_open(const char *run_dir, const prorl_model_params *params, prorl_trainer **out);

/**
 * Runs `n_steps` more RL steps with the run's settings, appending to its
 * metrics and saving checkpoints as configured; the run's configured total
 * grows when fewer steps remain. `last` (may be NULL; set its struct_size)
 * receives the last step's statistics.
 */
PRORL_API prorl_status prorl_trainer_step(prorl_trainer *trainer, int n_steps, prorl_train_stats *last);

/**
 * Called by prorl_trainer_step after each step with that step's statistics
 * (`stats->struct_size` is the library's). Return nonzero to stop after it:
 * the run is checkpointed at that step (so `prorl train --resume` or a new
 * trainer continues exactly) and prorl_trainer_step returns PRORL_STOPPED.
 */
typedef int32_t (*prorl_progress_fn)(const prorl_train_stats *stats, void *user_data);

/** Sets (or, with NULL, clears) the trainer's progress callback. */
PRORL_API prorl_status prorl_trainer_set_progress(prorl_trainer *trainer, prorl_progress_fn fn, void *user_data);

/** Steps done and the run's configured total. */
PRORL_API prorl_status prorl_trainer_progress(const prorl_trainer *trainer, int64_t *steps_done, int64_t *steps_total);

/** Saves the run's resumable state (latest policy, optimiser, step) now. */
PRORL_API prorl_status prorl_trainer_save(prorl_trainer *trainer);

/** Frees a trainer (NULL is fine); unsaved progress since the last checkpoint is lost. */
PRORL_API void prorl_trainer_free(prorl_trainer *trainer);

#ifdef __cplusplus
}
#endif

#endif /* PRORL_H */
