// The two floors under a delivery's CPU cost (`scripts/bench --floor`): what the libraries that
// serve must use cost on their own, with none of dispatcher's code around them.
//
//   floor http URL COUNT IN_FLIGHT   POSTs COUNT 1 KiB JSON bodies to URL through libcurl's multi
//                                    socket interface on one epoll, as serve's transfer loop drives
//                                    it: IN_FLIGHT at a time, each easy handle (and so its
//                                    connection) reused, the headers serve sends, the answer dropped.
//   floor store DATABASE COUNT       on an outbox of pending deliveries (SQLite), runs the store's
//                                    statements for COUNT deliveries in cycles of 64, as serve's
//                                    store loop does on SQLite (DeliveryQueries' SQL, prepared once):
//                                    the counts of leases, a page of endpoint_work, a probe per
//                                    endpoint, the lease, the bodies, and for the cycle before the
//                                    attempts, the verdicts and the endpoints' health; one commit a
//                                    cycle. Not the rest of a claim (moving endpoint_work on, rate
//                                    limits, ordering): a floor, so less than serve does, never more.
//
// Each prints its rate and its CPU time (user + system, this process) per POST or delivery.
#include <curl/curl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void report(const char *what, long count, double wall) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
    double system = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    printf("%ld %s, %.0f/s, %.1f us CPU each (user %.1f, system %.1f)\n", count, what, count / wall,
           (user + system) * 1e6 / count, user * 1e6 / count, system * 1e6 / count);
}

// --- libcurl alone -------------------------------------------------------------------------
static int epoll_fd;
static long timer_ms = -1;
static char body[1024];

static int watch(CURL *easy, curl_socket_t socket, int what, void *user, void *socket_user) {
    struct epoll_event event = {0};
    event.data.fd = socket;
    if (what == CURL_POLL_REMOVE) return epoll_ctl(epoll_fd, EPOLL_CTL_DEL, socket, NULL), 0;
    if (what & CURL_POLL_IN) event.events |= EPOLLIN;
    if (what & CURL_POLL_OUT) event.events |= EPOLLOUT;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, socket, &event) != 0) epoll_ctl(epoll_fd, EPOLL_CTL_ADD, socket, &event);
    return 0;
}
static int set_timer(CURLM *multi, long milliseconds, void *user) { timer_ms = milliseconds; return 0; }
static size_t drop(char *data, size_t size, size_t count, void *user) { return size * count; }

static void start(CURLM *multi, CURL *easy, const char *url, struct curl_slist *headers) {
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)sizeof body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
    curl_multi_add_handle(multi, easy);
}

static int http(const char *url, long count, long in_flight) {
    memset(body, 'x', sizeof body);
    memcpy(body, "{\"pad\":\"", 8);
    memcpy(body + sizeof body - 2, "\"}", 2);
    curl_global_init(CURL_GLOBAL_ALL);
    epoll_fd = epoll_create1(0);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, watch);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, set_timer);
    // What serve sends besides libcurl's own: the content type, the Standard Webhooks three, its user agent.
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: dispatcher/0.1.0");
    headers = curl_slist_append(headers, "webhook-id: 01a23999-56d1-7e1f-8cbd-0e051b8a731f");
    headers = curl_slist_append(headers, "webhook-timestamp: 1796262680");
    headers = curl_slist_append(headers, "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=");
    long started = 0, done = 0;
    for (; started < in_flight && started < count; started++) start(multi, curl_easy_init(), url, headers);
    double begin = seconds(), deadline = begin + 600;
    int running = 0;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    struct epoll_event events[256];
    while (done < count) {
        if (seconds() > deadline) { fprintf(stderr, "floor http: %ld of %ld in 600 s\n", done, count); return 1; }
        int ready = epoll_wait(epoll_fd, events, 256, timer_ms < 0 ? 100 : (int)timer_ms);
        for (int i = 0; i < ready; i++) {
            int bits = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) bits |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT) bits |= CURL_CSELECT_OUT;
            if (events[i].events & EPOLLERR) bits |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi, events[i].data.fd, bits, &running);
        }
        if (ready == 0) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        CURLMsg *message;
        int queued;
        while ((message = curl_multi_info_read(multi, &queued))) {
            if (message->msg != CURLMSG_DONE) continue;
            long status = 0;
            curl_easy_getinfo(message->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (message->data.result != CURLE_OK || status != 200) {
                fprintf(stderr, "floor http: %s, HTTP %ld\n", curl_easy_strerror(message->data.result), status);
                return 1;
            }
            done++;
            curl_multi_remove_handle(multi, message->easy_handle);
            if (started < count) started++, start(multi, message->easy_handle, url, headers);
            else curl_easy_cleanup(message->easy_handle);
        }
    }
    report("POSTs", count, seconds() - begin);
    return 0;
}

// --- SQLite alone: the store's statements ----------------------------------------------------
static sqlite3 *db;

static sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *statement = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, NULL) != SQLITE_OK) {
        fprintf(stderr, "floor store: %s\n%s\n", sqlite3_errmsg(db), sql);
        exit(1);
    }
    return statement;
}

static void run(sqlite3_stmt *statement) {
    int code;
    while ((code = sqlite3_step(statement)) == SQLITE_ROW) {}
    if (code != SQLITE_DONE) { fprintf(stderr, "floor store: %s\n", sqlite3_errmsg(db)); exit(1); }
    sqlite3_reset(statement);
}

static char *rows_of(const char *head, int rows, int columns, const char *tail) {
    size_t size = strlen(head) + strlen(tail) + (size_t)rows * (columns * 3 + 4) + 1;
    char *sql = malloc(size), *at = sql + sprintf(sql, "%s", head);
    for (int row = 0; row < rows; row++) {
        at += sprintf(at, "%s(", row ? ", " : "");
        for (int column = 0; column < columns; column++) at += sprintf(at, column ? ", ?" : "?");
        at += sprintf(at, ")");
    }
    sprintf(at, "%s", tail);
    return sql;
}

static int store(const char *path, long count) {
    if (sqlite3_open(path, &db) != SQLITE_OK) { fprintf(stderr, "floor store: cannot open %s\n", path); return 1; }
    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                     "PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;", NULL, NULL, NULL);
    const char *owner = "serve-floor";
    const char *request_headers = "[[\"Content-Type\",\"application/json\"],[\"User-Agent\",\"dispatcher/0.1.0\"],"
        "[\"webhook-id\",\"01a23999-56d1-7e1f-8cbd-0e051b8a731f\"],[\"webhook-timestamp\",\"1796262680\"]]";
    const char *response_headers = "[[\"Server\",\"nginx/1.22.1\"],[\"Date\",\"Thu, 03 Dec 2026 01:51:20 GMT\"],"
        "[\"Content-Type\",\"application/json\"],[\"Content-Length\",\"2\"],[\"Connection\",\"keep-alive\"]]";
    sqlite3_stmt *begin = prepare("BEGIN IMMEDIATE"), *commit = prepare("COMMIT");
    sqlite3_stmt *lease_counts = prepare(
        "SELECT count(*) FILTER (WHERE lease_owner = ?2), count(*) FROM deliveries WHERE status = 'delivering' AND lease_expires_at > ?1");
    sqlite3_stmt *work_page = prepare(
        "SELECT w.endpoint_id, w.due_at, w.version, CASE WHEN e.enabled = 1 AND e.removed_at IS NULL THEN 1 ELSE 0 END, e.ordered,"
        " CASE WHEN e.consecutive_failures >= e.circuit_failure_threshold THEN 1 ELSE e.max_concurrency END, e.revision,"
        " e.rate_limit_per_second, e.rate_tokens, e.rate_updated_at"
        " FROM endpoint_work w LEFT JOIN endpoints e ON e.id = w.endpoint_id"
        " WHERE w.due_at <= ?1 AND (w.due_at, w.endpoint_id) > (?2, ?3) ORDER BY w.due_at, w.endpoint_id LIMIT ?4");
    sqlite3_stmt *probe = prepare(
        "SELECT endpoint_id, id, next_attempt_at, ordering_key FROM deliveries WHERE endpoint_id = ?1 AND status = 'pending'"
        " ORDER BY next_attempt_at, id LIMIT ?2");
    sqlite3_stmt *lease = prepare(
        "UPDATE deliveries SET status = 'delivering', lease_owner = ?2, lease_expires_at = ?3, updated_at = ?4"
        " WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'"
        " RETURNING id, event_id, event_type, tenant_id, endpoint_id, attempt_count, coalesce(schedule_started_at, created_at), retry_base");
    sqlite3_stmt *bodies = prepare(
        "SELECT id, body, traceparent, tracestate FROM events WHERE id IN (SELECT value FROM json_each(?1))");
    sqlite3_stmt *healthy = prepare(
        "UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL, circuit_open_until = NULL"
        " WHERE id IN (SELECT value FROM json_each(?1)) AND (consecutive_failures > 0 OR circuit_open_until IS NOT NULL)");
    sqlite3_stmt *attempts = prepare(rows_of(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_us, url, request_headers, response_status,"
        " response_headers, response_body, response_truncated, error_kind, error_message, verdict, next_attempt_at) VALUES ",
        32, 14, ""));
    sqlite3_stmt *verdicts = prepare(rows_of(
        "UPDATE deliveries SET status = v.column3, attempt_count = attempt_count + 1, next_attempt_at = v.column4,"
        " last_http_status = v.column5, last_error = v.column6, lease_owner = NULL, lease_expires_at = NULL, updated_at = v.column7"
        " FROM (VALUES ", 32, 7, ") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column2"
        " AND deliveries.status = 'delivering'"));

    // The endpoints, and their ids as the JSON array the health update takes.
    char endpoints[64][64];
    int endpoint_count = 0;
    char endpoint_list[64 * 70] = "[";
    sqlite3_stmt *list = prepare("SELECT id FROM endpoints ORDER BY id LIMIT 64");
    while (sqlite3_step(list) == SQLITE_ROW) {
        snprintf(endpoints[endpoint_count], 64, "%s", (const char *)sqlite3_column_text(list, 0));
        strcat(endpoint_list, endpoint_count ? ",\"" : "\""), strcat(endpoint_list, endpoints[endpoint_count++]), strcat(endpoint_list, "\"");
    }
    strcat(endpoint_list, "]");
    sqlite3_finalize(list);

    enum { cycle = 64, chunk = 32 };
    sqlite3_int64 leased[cycle];
    int leased_count = 0;
    long done = 0;
    char ids[cycle * 24 + 2], event_ids[cycle * 48 + 2];
    double start = seconds();
    for (;;) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        sqlite3_int64 now = (sqlite3_int64)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
        run(begin);
        // The cycle before's results: all 200, in chunks of 32 (as DeliveryQueries.record).
        for (int first = 0; first + chunk <= leased_count; first += chunk) {
            for (int row = 0; row < chunk; row++) {
                int at = row * 14;
                sqlite3_bind_int64(attempts, at + 1, leased[first + row]);
                sqlite3_bind_int(attempts, at + 2, 1);
                sqlite3_bind_int64(attempts, at + 3, now);
                sqlite3_bind_int(attempts, at + 4, 1200);
                sqlite3_bind_text(attempts, at + 5, "http://127.0.0.1/hook", -1, SQLITE_STATIC);
                sqlite3_bind_text(attempts, at + 6, request_headers, -1, SQLITE_STATIC);
                sqlite3_bind_int(attempts, at + 7, 200);
                sqlite3_bind_text(attempts, at + 8, response_headers, -1, SQLITE_STATIC);
                sqlite3_bind_blob(attempts, at + 9, "{}", 2, SQLITE_STATIC);
                sqlite3_bind_int(attempts, at + 10, 0);
                for (int column = 11; column <= 12; column++) sqlite3_bind_null(attempts, at + column);
                sqlite3_bind_text(attempts, at + 13, "succeeded", -1, SQLITE_STATIC);
                sqlite3_bind_null(attempts, at + 14);
                at = row * 7;
                sqlite3_bind_int64(verdicts, at + 1, leased[first + row]);
                sqlite3_bind_text(verdicts, at + 2, owner, -1, SQLITE_STATIC);
                sqlite3_bind_text(verdicts, at + 3, "succeeded", -1, SQLITE_STATIC);
                sqlite3_bind_null(verdicts, at + 4);
                sqlite3_bind_int(verdicts, at + 5, 200);
                sqlite3_bind_null(verdicts, at + 6);
                sqlite3_bind_int64(verdicts, at + 7, now);
            }
            run(attempts);
            run(verdicts);
        }
        if (leased_count) sqlite3_bind_text(healthy, 1, endpoint_list, -1, SQLITE_STATIC), run(healthy);
        done += leased_count;
        if (done >= count) { run(commit); break; }
        // The claim.
        sqlite3_bind_int64(lease_counts, 1, now);
        sqlite3_bind_text(lease_counts, 2, owner, -1, SQLITE_STATIC);
        run(lease_counts);
        sqlite3_bind_int64(work_page, 1, now);
        sqlite3_bind_int64(work_page, 2, 0);
        sqlite3_bind_text(work_page, 3, "", -1, SQLITE_STATIC);
        sqlite3_bind_int(work_page, 4, 16);
        run(work_page);
        int chosen = 0;
        char *at = ids + sprintf(ids, "[");
        // Every endpoint probed, the first one taken from in turn, so that all drain alike.
        for (int n = 0; n < endpoint_count; n++) {
            sqlite3_bind_text(probe, 1, endpoints[(n + done / cycle) % endpoint_count], -1, SQLITE_STATIC);
            sqlite3_bind_int(probe, 2, cycle / endpoint_count + 2);
            while (sqlite3_step(probe) == SQLITE_ROW && chosen < cycle)
                at += sprintf(at, "%s%lld", chosen++ ? "," : "", (long long)sqlite3_column_int64(probe, 1));
            sqlite3_reset(probe);
        }
        sprintf(at, "]");
        sqlite3_bind_text(lease, 1, ids, -1, SQLITE_STATIC);
        sqlite3_bind_text(lease, 2, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(lease, 3, now + 60000);
        sqlite3_bind_int64(lease, 4, now);
        leased_count = 0;
        size_t used = (size_t)sprintf(event_ids, "[");
        while (sqlite3_step(lease) == SQLITE_ROW && leased_count < cycle) {
            // Event ids are the producer's: an outbox with longer ones than this program has room for is refused.
            int wrote = snprintf(event_ids + used, sizeof event_ids - used, "%s\"%s\"", leased_count ? "," : "",
                                 (const char *)sqlite3_column_text(lease, 1));
            if (wrote < 0 || (size_t)wrote >= sizeof event_ids - used - 1) { fprintf(stderr, "floor store: event ids too long\n"); return 1; }
            used += (size_t)wrote;
            leased[leased_count++] = sqlite3_column_int64(lease, 0);
        }
        sqlite3_reset(lease);
        sprintf(event_ids + used, "]");
        sqlite3_bind_text(bodies, 1, event_ids, -1, SQLITE_STATIC);
        run(bodies);
        run(commit);
        if (leased_count < cycle) { fprintf(stderr, "floor store: %ld deliveries, then the outbox ran dry\n", done); return 1; }
    }
    report("deliveries", done, seconds() - start);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "http") == 0 && atol(argv[3]) > 0 && atol(argv[4]) > 0)
        return http(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 4 && strcmp(argv[1], "store") == 0 && atol(argv[3]) > 0)
        return store(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: floor http URL COUNT IN_FLIGHT | floor store DATABASE COUNT\n");
    return 2;
}
