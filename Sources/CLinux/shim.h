/* What Swift's Glibc module does not bring: Linux's epoll and eventfd, behind small functions
   so Swift never lays out the packed struct epoll_event itself, and glibc's malloc_trim. (No
   _GNU_SOURCE: it would give glibc's shared headers another shape here than in the other
   modules that include them.) Also prctl, to name a thread, and setpriority, to lower one's priority. */
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const uint32_t dispatcher_epoll_in = EPOLLIN;
static const uint32_t dispatcher_epoll_out = EPOLLOUT;
static const uint32_t dispatcher_epoll_rdhup = EPOLLRDHUP;
static const uint32_t dispatcher_epoll_hup = EPOLLHUP;
static const uint32_t dispatcher_epoll_err = EPOLLERR;

static inline int dispatcher_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int dispatcher_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/* add != 0: EPOLL_CTL_ADD, else EPOLL_CTL_MOD. */
static inline int dispatcher_epoll_watch(int epoll, int descriptor, uint32_t events, int add) {
    struct epoll_event event = {0};
    event.events = events;
    event.data.fd = descriptor;
    return epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, descriptor, &event);
}

static inline int dispatcher_epoll_forget(int epoll, int descriptor) {
    return epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, 0);
}

/* Waits for up to `capacity` (at most 256) events; fills descriptors and their event bits. */
static inline int dispatcher_epoll_wait(int epoll, int *descriptors, uint32_t *events, int capacity, int timeout) {
    struct epoll_event ready[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epoll, ready, capacity, timeout);
    for (int i = 0; i < count; i++) {
        descriptors[i] = ready[i].data.fd;
        events[i] = ready[i].events;
    }
    return count;
}

/* Hands the free pages of every malloc arena back to the kernel; nonzero when some were. */
static inline int dispatcher_malloc_trim(void) { return malloc_trim(0); }

/* Names the calling thread; the kernel keeps the first 15 bytes. */
static inline void dispatcher_name_this_thread(const char *name) { prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

/* Sets the calling thread's nice value (Linux keeps one per thread); 0 on success. */
static inline int dispatcher_set_this_threads_nice(int nice) { return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice); }
