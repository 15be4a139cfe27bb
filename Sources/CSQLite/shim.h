#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro that casts -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type dispatcher_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/// sqlite3_config is variadic, which Swift cannot call.
static inline int dispatcher_sqlite_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#include <stdint.h>
#include <time.h>
#include <unistd.h>

/// A busy handler that polls the lock every 100 µs, up to the connection's timeout (its
/// context, in milliseconds). SQLite's own (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, 15, 20,
/// 25… ms between tries, so a writer that lost the lock to a producer committing thousands of
/// times a second could sleep 50 ms for a lock held 0.2 ms at a time. WAL locks are file locks:
/// there is no queue to wait in, only polling.
static int dispatcher_sqlite_busy_wait(void *timeout, int tries) {
    // When this thread's busy episode began (tries == 0 starts one).
    static _Thread_local struct timespec since;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (tries == 0) since = now;
    int64_t waited_us = (int64_t)(now.tv_sec - since.tv_sec) * 1000000 + (now.tv_nsec - since.tv_nsec) / 1000;
    if (waited_us >= (int64_t)(intptr_t)timeout * 1000) return 0;
    usleep(100);
    return 1;
}

/// `sqlite3_busy_timeout`, polling as `dispatcher_sqlite_busy_wait` does.
static inline int dispatcher_sqlite_busy_timeout(sqlite3 *db, int milliseconds) {
    return sqlite3_busy_handler(db, dispatcher_sqlite_busy_wait, (void *)(intptr_t)(milliseconds > 0 ? milliseconds : 0));
}
