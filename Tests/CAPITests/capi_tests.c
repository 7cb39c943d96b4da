/*
 * capi_tests.c — the C API against a real run: every function's success
 * path and its documented error statuses (NULL handles and pointers, bad
 * lengths and params, unknown ids, missing files, checkpoints of the wrong
 * kind, files that do not belong together). Nothing may crash.
 *
 *   capi_tests RUN_DIR SCRATCH_DIR
 *
 * RUN_DIR is an RL run (e.g. `prorl demo --quick`'s prorl/); SCRATCH_DIR
 * receives small bad files.
 *
 * First, in a forked child (before this process touches the library), every
 * function is called with edge values — SIZE_MAX lengths and indices,
 * NaN and infinite parameters, huge counts, NULLs — and must return a
 * status; a signal or a hang (60 s) fails the test.
 */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <prorl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_failures = 0, g_checks = 0;

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        g_checks++;                                                         \
        if (!(cond)) {                                                      \
            g_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, " (last error: %s)\n", prorl_last_error());     \
        }                                                                   \
    } while (0)

#define EXPECT_STATUS(call, want)                                                     \
    do {                                                                              \
        prorl_status got_ = (call);                                                   \
        EXPECT(got_ == (want), "%s returned %s, expected %s", #call,                  \
               prorl_status_name(got_), prorl_status_name(want));                     \
    } while (0)

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
}

#define EXPECT_REFUSED(call)                                                              \
    do {                                                                                  \
        prorl_status got_ = (call);                                                       \
        EXPECT(got_ != PRORL_OK && strcmp(prorl_status_name(got_), "PRORL_ERR_UNKNOWN_STATUS") != 0, \
               "%s returned %s, expected a refusal", #call, prorl_status_name(got_));   \
    } while (0)

/* A progress callback that asks to stop at its second call. */
static int32_t stop_at_second(const prorl_train_stats *stats, void *data) {
    int *calls = (int *)data;
    (*calls)++;
    return stats->struct_size == sizeof *stats && *calls >= 2;
}

/* A log callback that counts its lines. */
static void count_lines(int32_t level, const char *message, void *data) {
    if ((level == PRORL_LOG_INFO || level == PRORL_LOG_WARNING) && message && *message) (*(int *)data)++;
}

/* Every entry point with edge values; returns the number of failures. */
static int edge_calls(const char *run) {
    prorl_model *m = NULL;
    EXPECT_STATUS(prorl_model_load_run(run, NULL, &m), PRORL_OK);
    if (!m) return g_failures;
    prorl_model_params mp;
    prorl_model_default_params(&mp);
    mp.struct_size = SIZE_MAX;
    prorl_model *m2 = NULL;
    EXPECT_REFUSED(prorl_model_load_run(run, &mp, &m2));
    mp.struct_size = 0;
    EXPECT_REFUSED(prorl_model_load_run(run, &mp, &m2));
    prorl_model_default_params(&mp);
    mp.n_threads = INT_MIN;
    EXPECT_REFUSED(prorl_model_load_run(run, &mp, &m2));
    EXPECT_REFUSED(prorl_model_load_run("", NULL, &m2));
    EXPECT_REFUSED(prorl_model_load(NULL, NULL, NULL, NULL, &m2));
    EXPECT_REFUSED(prorl_model_load("", "", "", NULL, &m2));
    int threads[] = {-1, 1025, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) EXPECT_REFUSED(prorl_model_set_threads(m, threads[i]));
    size_t indexes[] = {SIZE_MAX, SIZE_MAX - 1, (size_t)1 << 63, 1000000};
    const char *id = NULL, *title = NULL;
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) EXPECT_REFUSED(prorl_model_item_id(m, indexes[i], &id));
    EXPECT_REFUSED(prorl_model_item_id(m, 0, NULL));
    EXPECT_REFUSED(prorl_model_item_title(m, NULL, &title));
    EXPECT_REFUSED(prorl_model_item_title(m, "", &title));
    EXPECT_STATUS(prorl_model_item_id(m, 0, &id), PRORL_OK);
    const char *history[] = {id, id, id};
    const char *path[] = {id};
    const char *nulls[] = {NULL, NULL};
    const char *items[64];
    size_t lengths[64], n_paths = 0, needed = 0;
    float scores[64];
    size_t sizes[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 40, 4097};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        EXPECT_REFUSED(prorl_generate(m, history, sizes[i], id, NULL, items, 64, lengths, scores, &n_paths, &needed));
        EXPECT_REFUSED(prorl_score_path(m, history, sizes[i], id, path, 1, NULL, 0, NULL));
        EXPECT_REFUSED(prorl_score_path(m, history, 3, id, path, sizes[i], NULL, 0, NULL));
    }
    EXPECT_REFUSED(prorl_generate(m, nulls, 2, id, NULL, items, 64, lengths, scores, &n_paths, &needed));
    EXPECT_REFUSED(prorl_generate(m, history, 3, NULL, NULL, items, 64, lengths, scores, &n_paths, &needed));
    EXPECT_REFUSED(prorl_generate(m, history, 3, "no-such-item", NULL, items, 64, lengths, scores, &n_paths, &needed));
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, NULL, items, 64, NULL, scores, &n_paths, &needed));
    EXPECT_REFUSED(prorl_score_path(m, history, 3, id, nulls, 2, NULL, 0, NULL));
    prorl_step_score steps[4];
    EXPECT_REFUSED(prorl_score_path(m, history, 3, id, path, 1, steps, 1, NULL)); /* needs 2 */
    prorl_generate_params gp;
    float floats[] = {NAN, INFINITY, -INFINITY, 0.0f, -1.0f, -FLT_MAX};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        prorl_generate_default_params(&gp);
        gp.decoding = PRORL_DECODE_SAMPLE;
        gp.temperature = floats[i];
        EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
        prorl_generate_default_params(&gp);
        gp.decoding = PRORL_DECODE_SAMPLE;
        gp.top_p = floats[i];
        EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    }
    int ints[] = {0, -1, 65, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        prorl_generate_default_params(&gp);
        gp.n_paths = ints[i];
        EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
        prorl_generate_default_params(&gp);
        gp.max_items = ints[i] == 65 ? 51 : ints[i];
        EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    }
    prorl_generate_default_params(&gp);
    gp.decoding = (prorl_decoding)77;
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    prorl_generate_default_params(&gp);
    gp.top_k = -1;
    gp.decoding = PRORL_DECODE_SAMPLE;
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    prorl_generate_default_params(&gp);
    gp.struct_size = SIZE_MAX;
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    prorl_generate_default_params(&gp);
    gp.no_repeats = 1;
    gp.constrained = 0;
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, items, 64, lengths, scores, &n_paths, &needed));
    prorl_generate_default_params(&gp);
    EXPECT_REFUSED(prorl_generate(m, history, 3, id, &gp, NULL, 64, lengths, scores, &n_paths, &needed));
    EXPECT_STATUS(prorl_generate(m, history, 3, id, &gp, items, 0, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_BUFFER_TOO_SMALL);
    EXPECT(strcmp(prorl_status_name((prorl_status)12345), "PRORL_ERR_UNKNOWN_STATUS") == 0, "an unknown status has a name");
    EXPECT(strcmp(prorl_status_name((prorl_status)-1), "PRORL_ERR_UNKNOWN_STATUS") == 0, "a negative status has a name");
    prorl_trainer *t = NULL;
    EXPECT_REFUSED(prorl_trainer_open("", NULL, &t));
    EXPECT_REFUSED(prorl_trainer_step(NULL, INT_MAX, NULL));
    EXPECT_REFUSED(prorl_trainer_progress(NULL, NULL, NULL));
    EXPECT_REFUSED(prorl_trainer_save(NULL));
    prorl_model_free(m);
    return g_failures;
}

/* Runs edge_calls in a child; a signal, a hang or a failure there fails here. */
static void edge_calls_in_child(const char *run) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        alarm(60);
        int failures = edge_calls(run);
        printf("C API edge calls (forked child): %d checks, %d failures\n", g_checks, failures);
        fflush(NULL);
        _exit(failures == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    g_checks++;
    if (WIFSIGNALED(status)) {
        g_failures++;
        fprintf(stderr, "FAIL: the edge calls killed their process with signal %d%s\n", WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (a hang: 60 s)" : "");
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_failures++;
        fprintf(stderr, "FAIL: the edge calls failed (exit %d)\n", WEXITSTATUS(status));
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s RUN_DIR SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *run = argv[1], *scratch = argv[2];
    edge_calls_in_child(run);
    char policy[1024], simulator_bad[1024], bad_json[1024], catalog_other[1024];
    snprintf(policy, sizeof policy, "%s/policy.safetensors", run);
    snprintf(bad_json, sizeof bad_json, "%s/bad.safetensors", scratch);
    snprintf(catalog_other, sizeof catalog_other, "%s/catalog.json", scratch);
    snprintf(simulator_bad, sizeof simulator_bad, "%s/missing.safetensors", scratch);
    write_file(bad_json, "this is not a safetensors file");
    write_file(catalog_other, "{\"attribute_names\":[],\"items\":[{\"attributes\":[],\"id\":\"x\",\"title\":\"X\"}]}");

    /* versions and names */
    EXPECT(prorl_abi_version() == PRORL_ABI_VERSION, "ABI %d vs header %d", prorl_abi_version(), PRORL_ABI_VERSION);
    EXPECT(strlen(prorl_version()) > 0, "empty version");
    EXPECT(strcmp(prorl_status_name(PRORL_ERR_UNKNOWN_ITEM), "PRORL_ERR_UNKNOWN_ITEM") == 0, "status name");

    /* loading: the error statuses */
    prorl_model *model = NULL;
    EXPECT_STATUS(prorl_model_load_run(run, NULL, NULL), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_load_run(NULL, NULL, &model), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_load_run("/nonexistent/run", NULL, &model), PRORL_ERR_NOT_FOUND);
    EXPECT(model == NULL, "a failed load leaves *out NULL");
    EXPECT(strstr(prorl_last_error(), "/nonexistent/run") != NULL, "the message names the path: %s", prorl_last_error());
    EXPECT_STATUS(prorl_model_load_run(scratch, NULL, &model), PRORL_ERR_NOT_FOUND); /* no config.json */
    EXPECT_STATUS(prorl_model_load(policy, simulator_bad, NULL, NULL, &model), PRORL_ERR_NOT_FOUND);
    EXPECT_STATUS(prorl_model_load(bad_json, bad_json, NULL, NULL, &model), PRORL_ERR_BAD_FILE);
    /* a checkpoint of the wrong kind: the policy where the simulator goes */
    EXPECT_STATUS(prorl_model_load(policy, policy, NULL, NULL, &model), PRORL_ERR_BAD_FILE);
    prorl_model_params mp;
    prorl_model_default_params(&mp);
    mp.struct_size = 1;
    EXPECT_STATUS(prorl_model_load_run(run, &mp, &model), PRORL_ERR_INVALID_ARGUMENT);
    prorl_model_default_params(&mp);
    mp.n_threads = 1;
    EXPECT_STATUS(prorl_model_load_run(run, &mp, &model), PRORL_OK);
    if (!model) {
        fprintf(stderr, "cannot continue without a model: %s\n", prorl_last_error());
        return 1;
    }
    EXPECT(strcmp(prorl_last_error(), "") == 0, "a successful call clears the message");

    /* items */
    size_t count = 0;
    EXPECT_STATUS(prorl_model_item_count(model, &count), PRORL_OK);
    EXPECT(count > 20, "item count %zu", count);
    EXPECT_STATUS(prorl_model_item_count(NULL, &count), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_item_count(model, NULL), PRORL_ERR_INVALID_ARGUMENT);
    const char *ids[12];
    for (size_t i = 0; i < 12; i++) EXPECT_STATUS(prorl_model_item_id(model, i, &ids[i]), PRORL_OK);
    const char *tmp = NULL;
    EXPECT_STATUS(prorl_model_item_id(model, count, &tmp), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_item_title(model, ids[0], &tmp), PRORL_OK);
    EXPECT(tmp && strlen(tmp) > 0, "a title");
    EXPECT_STATUS(prorl_model_item_title(model, "no-such-item", &tmp), PRORL_ERR_UNKNOWN_ITEM);
    EXPECT_STATUS(prorl_model_set_threads(model, -1), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_set_threads(model, 1000000), PRORL_ERR_INVALID_ARGUMENT);
    /* size_t edge values: never an out-of-range read */
    EXPECT_STATUS(prorl_model_item_id(model, SIZE_MAX - 1, &tmp), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_item_id(model, SIZE_MAX, &tmp), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_model_set_threads(model, 2), PRORL_OK);

    /* generation */
    const char *history[10];
    for (int i = 0; i < 10; i++) history[i] = ids[i];
    const char *target = ids[11];
    prorl_generate_params gp;
    prorl_generate_default_params(&gp);
    size_t lengths[8], n_paths = 0, needed = 0;
    float scores[8];
    const char *items[128];
    EXPECT_STATUS(prorl_generate(model, history, 0, target, &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, NULL, 10, target, &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, history, 10, "no-such-item", &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_UNKNOWN_ITEM);
    EXPECT_STATUS(prorl_generate(NULL, history, 10, target, &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &gp, items, 128, NULL, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, history, SIZE_MAX, target, &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, history, 40000, target, &gp, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    prorl_generate_params bad = gp;
    bad.temperature = INFINITY;
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &bad, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    bad = gp;
    bad.struct_size = 0;
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &bad, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    bad = gp;
    bad.n_paths = 0;
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &bad, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &gp, items, 0, lengths, scores, &n_paths, &needed),
                  PRORL_ERR_BUFFER_TOO_SMALL);
    EXPECT(needed >= 3 && n_paths == 3, "needed %zu items for %zu paths", needed, n_paths);
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &gp, items, needed, lengths, scores, &n_paths, &needed),
                  PRORL_OK);
    size_t total = 0;
    for (size_t p = 0; p < n_paths; p++) total += lengths[p];
    EXPECT(total == needed, "lengths add up to %zu, needed %zu", total, needed);
    for (size_t i = 0; i < total; i++) EXPECT_STATUS(prorl_model_item_title(model, items[i], &tmp), PRORL_OK);

    /* no repeats (the default): sampled paths of up to 10 items never name an item twice */
    prorl_generate_params nr = gp;
    EXPECT(nr.no_repeats == 1, "paths never repeat an item by default");
    nr.decoding = PRORL_DECODE_SAMPLE;
    nr.n_paths = 8;
    size_t nr_lengths[8], nr_paths = 0, nr_needed = 0;
    float nr_scores[8];
    const char *nr_items[128];
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &nr, nr_items, 128, nr_lengths, nr_scores, &nr_paths,
                                 &nr_needed), PRORL_OK);
    for (size_t p = 0, at = 0; p < nr_paths; at += nr_lengths[p], p++)
        for (size_t i = 0; i < nr_lengths[p]; i++)
            for (size_t j = 0; j < i; j++)
                EXPECT(strcmp(nr_items[at + i], nr_items[at + j]) != 0, "path %zu repeats item %s", p, nr_items[at + i]);
    /* a caller built before no_repeats (the shorter struct) still works and gets repeats allowed */
    prorl_generate_params old = gp;
    old.struct_size = offsetof(prorl_generate_params, no_repeats);
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &old, items, 128, lengths, scores, &n_paths, &needed),
                  PRORL_OK);
    EXPECT(scores[0] >= scores[1] && scores[1] >= scores[2], "beams best first: %g %g %g", scores[0], scores[1], scores[2]);
    gp.decoding = PRORL_DECODE_SAMPLE;
    gp.n_paths = 8;
    EXPECT_STATUS(prorl_generate(model, history, 10, target, &gp, items, 128, lengths, scores, &n_paths, &needed), PRORL_OK);
    EXPECT(n_paths == 8, "8 samples, got %zu", n_paths);

    /* scoring */
    const char *path[3] = {ids[2], ids[5], ids[7]};
    prorl_step_score steps[4];
    prorl_path_score whole;
    EXPECT_STATUS(prorl_score_path(model, history, 10, target, path, 3, steps, 3, &whole), PRORL_ERR_BUFFER_TOO_SMALL);
    EXPECT_STATUS(prorl_score_path(model, history, 10, target, path, SIZE_MAX, steps, 4, &whole), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_score_path(model, history, SIZE_MAX, target, path, 3, steps, 4, &whole), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_score_path(model, history, 10, target, path, 3, steps, 4, &whole), PRORL_OK);
    EXPECT(isnan(steps[0].ctr) && steps[1].ctr > 0 && steps[1].ctr < 1, "CTR: NAN at step 0, a probability after");
    EXPECT(fabs(whole.ioi - (steps[3].log_p_target - steps[0].log_p_target)) < 1e-9, "IoI telescopes");
    EXPECT(fabs(whole.ior - (double)(steps[0].rank_target - steps[3].rank_target)) < 1e-9, "IoR telescopes");
    EXPECT(steps[1].policy_log_prob < 0, "a policy log-prob");
    const char *unknown_path[1] = {"no-such-item"};
    EXPECT_STATUS(prorl_score_path(model, history, 10, target, unknown_path, 1, steps, 4, &whole), PRORL_ERR_UNKNOWN_ITEM);
    EXPECT_STATUS(prorl_score_path(model, history, 10, target, path, 3, NULL, 0, &whole), PRORL_OK);

    prorl_model_free(model);
    prorl_model_free(NULL);

    /* a catalogue that does not belong to the policy */
    char sim[1024];
    {
        /* the run's simulator path is in its config; the demo layout keeps it at ../simulator */
        snprintf(sim, sizeof sim, "%s/../simulator/simulator.safetensors", run);
        EXPECT_STATUS(prorl_model_load(policy, sim, catalog_other, NULL, &model), PRORL_ERR_INCOMPATIBLE);
        EXPECT_STATUS(prorl_model_load(policy, sim, NULL, NULL, &model), PRORL_OK);
        prorl_model_free(model);
    }

    /* training */
    prorl_trainer *trainer = NULL;
    EXPECT_STATUS(prorl_trainer_open("/nonexistent/run", NULL, &trainer), PRORL_ERR_NOT_FOUND);
    EXPECT_STATUS(prorl_trainer_open(run, NULL, NULL), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_trainer_open(run, NULL, &trainer), PRORL_OK);
    prorl_trainer *second = NULL;
    EXPECT_STATUS(prorl_trainer_open(run, NULL, &second), PRORL_ERR_BUSY); /* one trainer per run */
    EXPECT(second == NULL, "no handle for a refused open");
    int64_t done = 0, steps_total = 0;
    EXPECT_STATUS(prorl_trainer_progress(trainer, &done, &steps_total), PRORL_OK);
    EXPECT(done == steps_total && done > 0, "a finished run: %lld of %lld", (long long)done, (long long)steps_total);
    prorl_train_stats stats;
    memset(&stats, 0, sizeof stats);
    EXPECT_STATUS(prorl_trainer_step(trainer, 1, &stats), PRORL_ERR_INVALID_ARGUMENT); /* struct_size unset */
    stats.struct_size = sizeof stats;
    EXPECT_STATUS(prorl_trainer_step(trainer, 1, &stats), PRORL_OK); /* one more than configured */
    EXPECT(stats.step == done + 1 && stats.length > 0 && stats.seconds > 0, "step %lld, length %g", (long long)stats.step,
           stats.length);
    EXPECT_STATUS(prorl_trainer_progress(trainer, &done, &steps_total), PRORL_OK);
    EXPECT(done == stats.step && steps_total == done, "progress %lld of %lld", (long long)done, (long long)steps_total);
    EXPECT_STATUS(prorl_trainer_step(NULL, 1, &stats), PRORL_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(prorl_trainer_step(trainer, -1, &stats), PRORL_ERR_INVALID_ARGUMENT);
    /* the progress callback stops a run cleanly after the current step, checkpointed; the log callback hears of it */
    int calls = 0, lines = 0;
    int64_t before = 0;
    EXPECT_STATUS(prorl_trainer_progress(trainer, &before, NULL), PRORL_OK);
    prorl_set_log_callback(count_lines, &lines);
    EXPECT_STATUS(prorl_trainer_set_progress(trainer, stop_at_second, &calls), PRORL_OK);
    EXPECT_STATUS(prorl_trainer_step(trainer, 5, &stats), PRORL_STOPPED);
    EXPECT(calls == 2 && stats.step == before + 2, "stopped after 2 of 5 steps: %d calls, step %lld (from %lld)", calls,
           (long long)stats.step, (long long)before);
    EXPECT_STATUS(prorl_trainer_progress(trainer, &done, NULL), PRORL_OK);
    EXPECT(done == before + 2, "progress after the stop: %lld", (long long)done);
    EXPECT(lines >= 1, "the stop is logged (%d lines)", lines);
    EXPECT_STATUS(prorl_trainer_set_progress(trainer, NULL, NULL), PRORL_OK);
    EXPECT_STATUS(prorl_trainer_set_progress(NULL, NULL, NULL), PRORL_ERR_INVALID_ARGUMENT);
    prorl_set_log_callback(NULL, NULL);
    /* one rule for struct_size: a size the struct never had is refused */
    stats.struct_size = sizeof stats + 8;
    EXPECT_STATUS(prorl_trainer_step(trainer, 1, &stats), PRORL_ERR_INVALID_ARGUMENT);
    stats.struct_size = sizeof stats;
    EXPECT_STATUS(prorl_trainer_save(trainer), PRORL_OK);
    prorl_trainer_free(trainer);
    prorl_trainer_free(NULL);

    printf("C API: %d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
