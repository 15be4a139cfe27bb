// libpq from Debian's libpq-dev (/usr/include/postgresql), without needing -I flags: its own
// includes are quoted and resolve next to it.
#include <postgresql/libpq-fe.h>
