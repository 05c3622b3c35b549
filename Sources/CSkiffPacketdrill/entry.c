/*
 * packetdrill's entry point and the two variadic callbacks, which Swift cannot define.
 * Everything else is Swift (Sources/SkiffPacketdrill).
 */
#include "skiff_packetdrill.h"

#include <errno.h>
#include <stdarg.h>

void skiff_pd_set_errno(int value) { errno = value; }

/* fcntl(fd, cmd, ...): the commands packetdrill scripts use take an int or nothing. */
static int skiff_pd_fcntl_variadic(void *userdata, int fd, int command, ...) {
    va_list ap;
    va_start(ap, command);
    /* Reading an int that was not passed is harmless on the ABIs Skiff runs on (the register
     * holds garbage), but only the commands that take one look at it. */
    long argument = va_arg(ap, long);
    va_end(ap);
    return skiff_pd_fcntl(userdata, fd, command, argument);
}

/* ioctl(fd, request, ...): the requests Skiff knows take a pointer. */
static int skiff_pd_ioctl_variadic(void *userdata, int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *argument = va_arg(ap, void *);
    va_end(ap);
    return skiff_pd_ioctl(userdata, fd, request, argument);
}

__attribute__((visibility("default")))
void packetdrill_interface_init(const char *flags, struct skiff_pd_table *table) {
    if (table == NULL) return;
    skiff_pd_fill(flags, table);
    table->fcntl = skiff_pd_fcntl_variadic;
    table->ioctl = skiff_pd_ioctl_variadic;
}
