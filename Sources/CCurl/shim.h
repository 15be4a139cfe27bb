#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
   These typed wrappers are the only way the Swift code sets options or reads info. */

typedef size_t (*dispatcher_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef curl_socket_t (*dispatcher_curl_opensocket_callback)(void *context, curlsocktype purpose,
                                                             struct curl_sockaddr *address);

static inline CURLcode dispatcher_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dispatcher_curl_set_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dispatcher_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dispatcher_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dispatcher_curl_set_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dispatcher_curl_set_data_callback(CURL *handle, CURLoption option,
                                                         dispatcher_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode dispatcher_curl_set_opensocket_callback(CURL *handle,
                                                               dispatcher_curl_opensocket_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
}

static inline CURLcode dispatcher_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode dispatcher_curl_get_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode dispatcher_curl_get_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/* A PEM certificate or key held in memory (CURLOPT_SSLCERT_BLOB, CURLOPT_SSLKEY_BLOB): libcurl
   copies the bytes, so the caller's buffer need not outlive the call. */
static inline CURLcode dispatcher_curl_set_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = length;
    blob.flags = CURL_BLOB_COPY;
    return curl_easy_setopt(handle, option, &blob);
}

/* curl_share_setopt is variadic too: what a share handle shares. */
static inline CURLSHcode dispatcher_curl_share_data(CURLSH *share, curl_lock_data data) {
    return curl_share_setopt(share, CURLSHOPT_SHARE, data);
}

/* The certificate chain of the last transfer (CURLOPT_CERTINFO): one slist of "Name:value"
   lines per certificate, or NULL. */
static inline struct curl_certinfo *dispatcher_curl_certinfo(CURL *handle) {
    struct curl_certinfo *info = NULL;
    if (curl_easy_getinfo(handle, CURLINFO_CERTINFO, &info) != CURLE_OK) return NULL;
    return info;
}

/* The multi handle's socket interface (curl_multi_setopt is variadic): libcurl says which
   sockets to watch, and when to call it back without one, through these two callbacks. */
typedef int (*dispatcher_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *context, void *socketContext);
typedef int (*dispatcher_curl_timer_callback)(CURLM *multi, long timeoutMilliseconds, void *context);

static inline CURLMcode dispatcher_curl_multi_set_callbacks(CURLM *multi, dispatcher_curl_socket_callback socketCallback,
                                                            dispatcher_curl_timer_callback timerCallback, void *context) {
    CURLMcode code = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socketCallback);
    if (code == CURLM_OK) code = curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, context);
    if (code == CURLM_OK) code = curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timerCallback);
    if (code == CURLM_OK) code = curl_multi_setopt(multi, CURLMOPT_TIMERDATA, context);
    return code;
}

static const curl_socket_t dispatcher_curl_socket_timeout = CURL_SOCKET_TIMEOUT;
